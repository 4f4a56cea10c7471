CREATE TABLE `kv_entries` (
	`namespace` text NOT NULL,
	`key` text NOT NULL,
	`value` blob NOT NULL,
	`metadata` text,
	`expiration` integer,
	PRIMARY KEY(`namespace`, `key`)
);
--> statement-breakpoint
CREATE INDEX `kv_entries_expiration_idx` ON `kv_entries` (`expiration`) WHERE "kv_entries"."expiration" IS NOT NULL;