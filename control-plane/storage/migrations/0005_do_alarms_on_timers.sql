-- Durable Object alarms move onto the scheduler's timers table (kind "do-alarm"); pending ones are kept.
INSERT OR IGNORE INTO `timers` (`id`, `kind`, `key`, `due_at`, `payload`, `seq`) SELECT 'do-alarm:' || `object_key`, 'do-alarm', `object_key`, `due_at`, '{"retryCount":' || `retry_count` || '}', 1 FROM `durable_object_alarms`;--> statement-breakpoint
DROP TABLE `durable_object_alarms`;
