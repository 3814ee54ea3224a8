"""Contacts: the team's address book (messaging/models/contacts.py).

numbers     a number as typed -> E.164 (phonenumbers, PHONE_DEFAULT_REGION), or why not
book        every change to contacts (create, edit, merge, delete), tags, names by number, search
forms       the contact form
reading     reading an uploaded CSV or Excel file: its kind, its encoding, its rows
columns     a file's columns: what each may hold, the guess from its header, one row read
importing   an import job: upload, columns, the chunks written (resumable), the problems file
exporting   the contacts as CSV, cells made safe for spreadsheets
tasks       the import's Celery task
views/      the pages: list, contact, form, merge, search for compose, import and export

Who may do what (messaging/teams/permissions.py decides the team): every member reads the
contacts and their pages; senders create, edit, merge and export; admins delete and import.
"""
