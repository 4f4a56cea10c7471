CREATE TABLE `cron_runs` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`tenant` text NOT NULL,
	`schedule` text NOT NULL,
	`timezone` text NOT NULL,
	`trigger` text NOT NULL,
	`scheduled_time` integer NOT NULL,
	`started_at` integer,
	`ended_at` integer,
	`outcome` text NOT NULL,
	`error` text,
	`logs` text,
	`request_id` text,
	`owner` text,
	`lease_until` integer
);
--> statement-breakpoint
CREATE INDEX `cron_runs_trigger_idx` ON `cron_runs` (`tenant`,`schedule`,`id`);--> statement-breakpoint
CREATE TABLE `queue_messages` (
	`id` text PRIMARY KEY NOT NULL,
	`queue` text NOT NULL,
	`body` blob NOT NULL,
	`content_type` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`enqueued_at` integer NOT NULL,
	`visible_at` integer NOT NULL,
	`state` text DEFAULT 'ready' NOT NULL,
	`lease_owner` text,
	`lease_until` integer,
	`error` text
);
--> statement-breakpoint
CREATE INDEX `queue_messages_ready_idx` ON `queue_messages` (`queue`,`state`,`visible_at`);--> statement-breakpoint
CREATE TABLE `timers` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`key` text NOT NULL,
	`due_at` integer NOT NULL,
	`payload` text,
	`seq` integer DEFAULT 1 NOT NULL,
	`lease_owner` text,
	`lease_until` integer
);
--> statement-breakpoint
CREATE INDEX `timers_due_idx` ON `timers` (`due_at`);