/**
 * Durable Object ids: 64 lowercase hex characters, 48 of identity and 16 of a
 * checksum bound to the tenant and class, so `idFromString` rejects ids of
 * another class (or made up) with a clear error. `idFromName` is
 * deterministic: the same name gives the same id, per tenant and class.
 *
 * Worker code (also used by the host): imports only `node:crypto`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { DurableObjectId } from "./types.ts";

const HEX_ID = /^[0-9a-f]{64}$/;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function checksum(namespace: string, body: string): string {
  return sha256Hex(`worky-do-id\0${namespace}\0${body}`).slice(0, 16);
}

/** The id scope of one class of one tenant. */
export function idNamespace(tenant: string, className: string): string {
  return `${tenant}\0${className}`;
}

/**
 * One object's id.
 *
 * @example
 * ```ts
 * import { idFromName, idNamespace } from "./id.worker.ts";
 * const ns = idNamespace("shop", "Counter");
 * console.log(idFromName(ns, "a").equals(idFromName(ns, "a"))); // true
 * ```
 */
export class ObjectId implements DurableObjectId {
  readonly #hex: string;
  readonly name?: string;
  constructor(hex: string, name?: string) {
    this.#hex = hex;
    if (name !== undefined) this.name = name;
  }
  toString(): string {
    return this.#hex;
  }
  toJSON(): string {
    return this.#hex;
  }
  equals(other: DurableObjectId): boolean {
    return other instanceof ObjectId && other.#hex === this.#hex;
  }
  [Symbol.for("Deno.customInspect")](): string {
    return `DurableObjectId(${this.#hex}${this.name === undefined ? "" : ` "${this.name}"`})`;
  }
}

/** The id of the object named `name`. */
export function idFromName(namespace: string, name: string): ObjectId {
  if (typeof name !== "string") {
    throw new TypeError(`idFromName(): name must be a string, got ${typeof name}`);
  }
  const body = sha256Hex(`worky-do-name\0${namespace}\0${name}`).slice(0, 48);
  return new ObjectId(body + checksum(namespace, body), name);
}

/** A new random id. */
export function newUniqueId(namespace: string): ObjectId {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const body = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return new ObjectId(body + checksum(namespace, body));
}

/** Parses an id string of this namespace; throws a TypeError naming what is wrong. */
export function idFromString(namespace: string, text: string, className: string): ObjectId {
  if (typeof text !== "string" || !HEX_ID.test(text)) {
    throw new TypeError(
      `Invalid Durable Object ID ${JSON.stringify(String(text)).slice(0, 80)}: ` +
        "expected 64 lowercase hex characters (the result of id.toString())",
    );
  }
  if (checksum(namespace, text.slice(0, 48)) !== text.slice(48)) {
    throw new TypeError(
      `Invalid Durable Object ID ${text}: it is not an id of class "${className}" ` +
        "(made up, or created by another namespace)",
    );
  }
  return new ObjectId(text);
}

/** True when `hex` is a well-formed id of this namespace (host-side check). */
export function isValidId(namespace: string, hex: string): boolean {
  return typeof hex === "string" && HEX_ID.test(hex) &&
    checksum(namespace, hex.slice(0, 48)) === hex.slice(48);
}
