"""Message templates, personal and team.

Merge fields from contacts, the merge itself, and the length of a text in SMS segments.
"""
