"""The team inbox: messages received, threaded into conversations, assigned and answered.

storing        each message stored once in its conversation (received, sent elsewhere, or
               sent from the portal), whatever brings it
threads        which conversation a message belongs to; what a new message changes in it
sync           message sync (FSync at link time with the history, then ISync on a schedule
               and after every webhook): the complete source, within the Light budget
instant        instant-message webhook deliveries, handed over by tracking
downloads      files of received MMS fetched into the private storage, with retries
notifications  in-app notices and emails to whoever looks after a conversation
actions        assign, close, reopen, notes, read state, and who may do them
listing        the list (filters, search, unread counts, pages) and a thread, as pages read
reply          replying in a thread through the compose rules and the outbox
schedule       work handed to a worker after commit, by task name
receivers      following the outbox's new messages and new links
views, tasks, admin
"""
