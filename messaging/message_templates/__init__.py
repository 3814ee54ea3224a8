"""Message templates, personal and team: merge fields from contacts, the merge itself and the length of the result in SMS segments."""
