// Package cache keeps data keys (DKs, docs/FORMAT.md section 2) in memory so that the gateway
// does not call the key provider for every object.
//
// It is built on github.com/hashicorp/golang-lru/v2/expirable (bounded LRU with a time to live)
// and golang.org/x/sync/singleflight (one provider call for concurrent misses of one key).
// What is written here is only the policy around them: use limits per data key, copies for
// callers, zeroing of key bytes, and counters.
//
// # Two sides
//
// The encrypt side maps (key id, encryption context) to the data key currently used for new
// objects. EncryptKey reuses it until using it once more would exceed one of the limits below,
// then retires it and asks the Source for a new one (GenerateDataKey).
//
// The decrypt side maps SHA-256(key id, canonical encryption context, wrapped key) to the
// plaintext data key. Keys made by EncryptKey are written through to it, so reading back what
// this process wrote needs no Decrypt call. Entries expire after DecryptMaxAge.
//
// # Defaults, and why
//
// The limits follow the AWS Encryption SDK's caching cryptographic materials manager: a maximum
// age (required there), a maximum number of messages (at most 2^32 there) and a maximum number of
// bytes per data key.
//
//   - MaxAge 5m, DecryptMaxAge 5m: the time a data key stays in memory, and the longest a
//     disabled or revoked KMS key (or a changed key policy) keeps working for this process. Five
//     minutes is also what MinIO's KES uses for its key cache.
//   - MaxObjects 10,000 (never more than 2^32): in this format a data key is never used as an
//     AES-GCM key itself. Every envelope derives a single-use wrapping key with HKDF from the data
//     key and a fresh 32-byte random salt, so reuse does not bring GCM nonce collisions closer.
//     The limit instead bounds the blast radius of one leaked data key (the objects whose object
//     keys it can unseal) and keeps audit granularity: KMS logs one GenerateDataKey per at most
//     10,000 objects, and bulk uploads still cost one KMS call per 10,000 objects (0.01%).
//   - MaxBytes 64 GiB: the same blast-radius bound measured in data.
//   - Entries 1,000 per side: one encrypt entry per (bucket, key) in use, and on the read side
//     1,000 data keys cover ten million objects' worth of keys at the default MaxObjects; 32
//     bytes each plus bookkeeping, well under a megabyte.
//
// With the defaults, 1,000 PUTs to one bucket make one GenerateDataKey call and reading them back
// makes no Decrypt call in the same process (one in another process); with Disabled every object
// costs one provider call each way.
//
// # Key material
//
// Callers always get their own copy of a plaintext key (DataKey.Zero or clear() it when done).
// The cache's copy is zeroed when it is evicted, expires, is retired by a limit, or on Purge;
// since callers hold copies, zeroing never corrupts an operation in flight. Errors are never
// cached: the next call asks the Source again.
//
// The Source call made on a miss runs detached from the caller's cancellation (its result serves
// every waiter and is cached), so the Source must bound its own calls; keys.KMS does (Timeout).
// Each waiter still returns as soon as its own context is done.
//
// The expirable LRU of golang-lru v2.0.7 runs one cleanup goroutine per LRU that never exits;
// a Cache is meant to live as long as the process.
package cache
