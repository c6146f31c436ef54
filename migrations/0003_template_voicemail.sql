-- The message a call leaves after the beep when it reaches an answering machine.
ALTER TABLE templates ADD COLUMN voicemail_message TEXT;
