// One instance of each short string the caches hold: JSON.parse makes a new string for every value,
// so 50,000 cached objects would hold 50,000 copies of "mail.devicepass.io/v1alpha1", of each
// label value, condition reason and client setting. The table is bounded: when it is full it
// starts over (unique strings such as uids pass through it too), which costs a few more copies of
// the common strings, never unbounded growth.

/** Strings longer than this are rarely repeated (hashes, seals, messages) and are left alone. */
const maxInternedLength = 64;

export class StringInterner {
  private readonly table = new Map<string, string>();
  private readonly capacity: number;

  constructor(capacity = 20_000) {
    this.capacity = capacity;
  }

  /** The table's instance of `value`, which becomes it if it has none. */
  string(value: string): string {
    if (value.length > maxInternedLength) return value;
    const known = this.table.get(value);
    if (known !== undefined) return known;
    if (this.table.size >= this.capacity) this.table.clear();
    this.table.set(value, value);
    return value;
  }

  /** Replaces, in place, every string value in `value` (objects and arrays, recursively) by its instance. */
  strings<T>(value: T): T {
    if (typeof value === "string") return this.string(value) as T;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.strings(value[i] as unknown);
    } else if (value !== null && typeof value === "object") {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) record[key] = this.strings(record[key]);
    }
    return value;
  }
}
