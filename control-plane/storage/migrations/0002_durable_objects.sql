CREATE TABLE `durable_object_alarms` (
	`object_key` text PRIMARY KEY NOT NULL,
	`tenant` text NOT NULL,
	`class_name` text NOT NULL,
	`object_id` text NOT NULL,
	`due_at` integer NOT NULL,
	`scheduled_at` integer NOT NULL,
	`retry_count` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `durable_object_alarms_due_idx` ON `durable_object_alarms` (`due_at`);--> statement-breakpoint
CREATE TABLE `durable_object_leases` (
	`object_key` text PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`expires_at` integer NOT NULL
);
