// Package embedded runs an S3 store inside the gateway process for the zero-config mode
// (`go run ./cmd/gateway` with no configuration). The gateway treats it as any other S3
// backend: it encrypts everything before it gets here and talks to it over HTTP through
// Store.Transport. Because the store does no authentication at all, it is not served on a TCP
// port but on a unix socket, <dir>/run/s3.sock (directory 0700, socket 0600): only this
// process (and root) can reach it.
//
// # Why gofakes3 with s3afero
//
// The store is github.com/johannesboyne/gofakes3 (MIT, pure Go, maintained, runs in-process
// as an http.Handler) with its backend/s3afero on-disk backend: objects are plain files under
// <dir>/objects/buckets/<bucket>/<key>, metadata JSON files under <dir>/objects/metadata.
// Alternatives considered: rclone/gofakes3, the fork rclone serves with, has only an
// in-memory backend of its own (rclone plugs in its VFS, which we do not want to embed);
// versitygw is a whole gateway built on fasthttp/fiber with its own auth and configuration,
// far more than an in-process store needs; MinIO cannot be embedded as a library. Nothing
// here re-implements S3: this package only wraps gofakes3 where the gateway needs stronger
// guarantees than gofakes3 gives (see backend.go, multipart.go and http.go), which is why
// those parts are hand-written.
//
// # What the wrappers add to gofakes3 v1.2.0
//
//   - An upload whose body ends early leaves no object and does not touch an existing
//     object of the same key: bodies are spooled to <dir>/tmp and their length checked
//     before s3afero writes anything (s3afero writes straight into the final file).
//   - Overwrites replace the metadata (s3afero merges the old object's metadata into the new
//     one); only x-amz-meta-*, Content-Type, Content-Disposition and Content-Encoding are
//     stored (gofakes3 would store and echo every x-amz-* request header). User metadata is
//     limited to 2048 bytes (names without the x-amz-meta- prefix plus values), like S3.
//   - CopyObject honours x-amz-metadata-directive (gofakes3 merges the source's metadata into
//     a REPLACE), and copying an object onto itself works (s3afero would truncate it).
//   - Multipart parts are spooled to disk (gofakes3 keeps them in memory until Complete);
//     Complete checks part order and ETags and streams the parts into the object.
//   - The object remembers its part sizes and multipart ETag ("<hex>-N"): GET/HEAD with
//     partNumber answer with the part's range and x-amz-mp-parts-count, and GET, HEAD and
//     listings show the multipart ETag.
//   - Listings are sorted by key, honour prefix, delimiter, max-keys, marker, start-after
//     and continuation tokens (s3afero ignores paging and gets nested prefixes wrong).
//   - A lock file keeps a second process off the same data dir.
//   - An object and a key below it ("a" and "a/b") cannot both be stored (one would be a file,
//     the other needs a directory of that name): the later write fails with InvalidArgument
//     and the existing object stays (s3afero's failed write used to end in "a" being deleted).
//
// # Limits
//
//   - Keys must map one-to-one onto file names: no empty, "." or ".." segments, no trailing
//     slash ("folder" marker objects), at most 222 bytes (s3afero names the metadata file after
//     the whole key); others are refused with InvalidArgument. An object "a" and an object
//     "a/b" cannot both exist (a file cannot be a directory).
//   - No authentication, no versioning, no ACLs/policies/tagging/lifecycle, no
//     UploadPartCopy (refused with NotImplemented), no SSE. Cache-Control, Expires and
//     Content-Language are not stored (gofakes3 does not capture them).
//   - Multipart uploads in progress live in memory (their parts on disk) and are lost when
//     the process stops; parts smaller than 5 MiB are accepted.
//   - s3afero holds one lock for all operations while it copies a body into place, so a large
//     PUT briefly stalls other requests, and an object is written in place: a GET racing a PUT
//     of the same key may see a partly written object (the gateway's format detects that).
//     While an overwrite is being stored the key may answer NoSuchKey for that moment.
//   - aws-chunked request bodies: gofakes3 decodes STREAMING-AWS4-HMAC-SHA256-PAYLOAD without
//     checking chunk signatures, and does not understand the *-TRAILER variants; the gateway
//     sends plain bodies with UNSIGNED-PAYLOAD.
//   - Listing reads the metadata of every object of the bucket that matches the prefix.
package embedded
