/**
 * What the KV binding needs from storage. The control plane implements it on
 * libSQL (`control-plane/storage/kv_store.ts`); the contract suite in
 * `tests/runtime/bindings/kv/storage.case.ts` runs against every implementation.
 *
 * Namespaces are opaque strings chosen by the control plane (one per tenant
 * binding); implementations never mix them. Times are milliseconds since the
 * epoch from the injected clock; an entry whose expiration is ≤ now is absent.
 */
export interface KvEntry {
  value: Uint8Array;
  metadata: unknown | null;
  /** Expiration in seconds since the epoch, as Cloudflare reports it. */
  expiration: number | null;
}

export interface KvListKey {
  name: string;
  expiration?: number;
  metadata?: unknown;
}

export interface KvListResult {
  keys: KvListKey[];
  list_complete: boolean;
  cursor?: string;
}

export interface KvStorage {
  get(namespace: string, key: string, now: number): Promise<KvEntry | null>;
  getMany(namespace: string, keys: string[], now: number): Promise<Map<string, KvEntry>>;
  put(
    namespace: string,
    key: string,
    value: Uint8Array,
    options: { expiration: number | null; metadata: unknown | null },
  ): Promise<void>;
  delete(namespace: string, key: string): Promise<void>;
  list(
    namespace: string,
    options: { prefix: string; limit: number; cursor: string | null },
    now: number,
  ): Promise<KvListResult>;
}
