CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`hash` text NOT NULL,
	`scope` text NOT NULL,
	`tenant` text,
	`description` text,
	`created_at` integer NOT NULL,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_unique` ON `api_tokens` (`hash`);--> statement-breakpoint
CREATE TABLE `registry_tags` (
	`name` text NOT NULL,
	`tag` text NOT NULL,
	`version` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`name`, `tag`)
);
--> statement-breakpoint
CREATE TABLE `registry_versions` (
	`name` text NOT NULL,
	`version` text NOT NULL,
	`manifest` text NOT NULL,
	`digest` text NOT NULL,
	`size` integer NOT NULL,
	`signer` text NOT NULL,
	`published_at` integer NOT NULL,
	`published_by` text,
	PRIMARY KEY(`name`, `version`)
);
--> statement-breakpoint
CREATE TABLE `tenant_deployments` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`tenant` text NOT NULL,
	`ref` text NOT NULL,
	`digest` text NOT NULL,
	`action` text NOT NULL,
	`previous` text,
	`created_at` integer NOT NULL,
	`actor` text
);
--> statement-breakpoint
CREATE INDEX `tenant_deployments_tenant_idx` ON `tenant_deployments` (`tenant`,`id`);