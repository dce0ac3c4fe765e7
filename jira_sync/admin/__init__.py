"""What operators do every day (configure, test, create, sever, replay), as framework-free
functions: the admin API's views and the CLI's commands are both thin layers over these, so
the two can never disagree."""
