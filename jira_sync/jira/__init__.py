"""Everything that talks to Jira: auth, the rate limiter, JQL quoting and the client."""
