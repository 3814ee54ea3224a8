"""The contacts pages: `contacts` (the book, a contact, its form, merge, search, export) and
`imports` (uploading a file, its columns, progress and problems)."""
