// Package embedded runs an S3 store inside the gateway process for the zero-config mode
// (`go run ./cmd/gateway` with no configuration). The gateway treats it as any other S3
// backend: it encrypts everything before it gets here and talks to it over HTTP through
// Store.Transport, so the store holds ciphertext only. Because the store does no
// authentication at all, it is not served on a TCP port but on a unix socket,
// <dir>/run/s3.sock (directory 0700, socket 0600): only this process (and root) can reach it.
//
// # What it is made of, and why
//
// The S3 protocol side is github.com/johannesboyne/gofakes3 (MIT, pure Go, maintained, runs
// in-process as an http.Handler). Its storage is this package's gofakes3.Backend: metadata in
// one go.etcd.io/bbolt database (the embedded B+tree store of etcd: ACID transactions, one
// file, no process of its own) and bodies in files named by a random id (db.go). Nothing on
// disk is named after a key, so every S3 key can be stored: folder markers ("folder/"), "a"
// next to "a/b", 1,024-byte keys, any UTF-8. A body is written, fsynced and renamed into place
// before one transaction publishes the record naming it, so readers see the old object or the
// new one, never a mix, and an upload that fails leaves nothing behind.
//
// Alternatives considered:
//   - gofakes3's own s3afero backend (used up to now): files named by key, so "a" and "a/b"
//     cannot both exist, no folder markers, keys limited by NAME_MAX, overwrites written in
//     place under one global lock (a GET racing a PUT could see a torn object). A data dir it
//     wrote is migrated at Start (migrate.go).
//   - gofakes3's s3bolt backend: bodies inside bbolt, read into memory whole (a 10 GB object
//     needs 10 GB of RAM, and bbolt's file never shrinks). Its idea, metadata in bbolt, is kept;
//     bodies are streamed from files instead.
//   - github.com/versity/versitygw's posix backend run in-process (it offers versioning): it
//     maps keys onto directories and files split at "/" too (the same "a" / "a/b" conflict,
//     directory objects emulated with xattrs), needs
//     a file system with extended attributes (tmpfs without user xattrs, some container
//     overlays and NFS fail), and comes with its fiber/fasthttp front end, auth and IAM layers,
//     far more than an in-process store needs, to be wired up without its own server.
//   - MinIO cannot be embedded as a library.
//
// # What the store adds to gofakes3 v1.2.0
//
//   - Overwrites replace the metadata; only x-amz-meta-*, Content-Type, Content-Disposition and
//     Content-Encoding are stored (gofakes3 would store and echo every x-amz-* request header).
//     User metadata is limited to 2048 bytes (names without the x-amz-meta- prefix plus values),
//     like S3.
//   - CopyObject honours x-amz-metadata-directive (gofakes3 merges the source's metadata into a
//     REPLACE); copying an object onto itself works; the body is shared by a hard link.
//   - Multipart parts are body files named in the upload's database record (gofakes3 keeps them
//     in memory until Complete): uploads in progress survive a restart. Complete checks part
//     order and ETags and streams the parts into the object.
//   - The object remembers its part sizes and multipart ETag ("<hex>-N"): GET/HEAD with
//     partNumber answer with the part's range and x-amz-mp-parts-count, and GET, HEAD and
//     listings show the multipart ETag.
//   - Listings walk the database in key order and honour prefix, delimiter, max-keys, marker,
//     start-after and continuation tokens.
//   - Object tagging (GetObjectTagging, PutObjectTagging, DeleteObjectTagging, x-amz-tagging on
//     PUT and CreateMultipartUpload, x-amz-tagging-count), which gofakes3 lacks: it would store
//     a PUT ?tagging body as the object and delete the object on DELETE ?tagging.
//   - A full file system answers 507 XMinioStorageFull (S3 has no such code; this is what MinIO
//     answers, and S3-compatible clients know it); the object being written is not created and
//     the previous version stays whole. The gateway shows it to its clients as InternalError
//     (500) naming the 507.
//   - UploadPartCopy (partcopy.go), with x-amz-copy-source-range and the copy-source
//     conditions: the part is streamed from the source's body file. The gateway uses it to write
//     the manifest of an object above its copy limit (backend.max_copy_size, default 5 GiB).
//   - A lock file keeps a second process off the same data dir.
//
// # Limits
//
//   - No authentication, no versioning (gofakes3 answers the versioning calls as for a bucket
//     that never had it: this backend implements no gofakes3.VersionedBackend, so PUT
//     ?versioning is NotImplemented), no ACLs/policies/lifecycle/bucket tagging (those
//     sub-resources are refused with NotImplemented), no SSE.
//     Cache-Control, Expires and Content-Language are not stored (gofakes3 does not capture them).
//   - Parts smaller than 5 MiB are accepted. Complete copies the parts into one body file, so
//     it needs the object's size in free space once more for a moment.
//   - aws-chunked request bodies: gofakes3 decodes STREAMING-AWS4-HMAC-SHA256-PAYLOAD without
//     checking chunk signatures, and does not understand the *-TRAILER variants; the gateway
//     sends plain bodies with UNSIGNED-PAYLOAD.
//   - Writes are serialised by bbolt (one write transaction at a time, each fsynced); bodies
//     are received and fsynced outside the transaction, in parallel.
//   - On systems where an open file cannot be unlinked (not unix), a body replaced while a GET
//     reads it stays on disk until the next Start.
package embedded
