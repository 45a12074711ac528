-- What a provider accepted of a message before a failed send (for SMPP, the
-- parts of a multipart message already submitted), so that the next attempt
-- sends only the rest. Opaque to Switchboard; no phone numbers or text.
ALTER TABLE messages ADD COLUMN send_progress TEXT NOT NULL DEFAULT '';
