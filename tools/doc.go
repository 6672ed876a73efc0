// Package tools implements the gateway's offline subcommands (docs/RECOVERY.md):
//
//   - Presign: a SigV4 presigned GET or PUT URL for the gateway, like `aws s3 presign`;
//   - Rewrap: put the envelopes of the objects under a prefix under another key-provider key
//     without rewriting object data (a server-side copy of each object onto itself with new
//     metadata; part by part above the copy limit);
//   - Migrate: encrypt objects that were stored before the gateway, in place, streaming, never
//     deleting data before its encrypted copy has been read back and compared;
//   - Decrypt: recover an object with nothing but its stored bytes, its metadata and the key
//     provider, when no gateway is running.
//
// The cryptography is package format's, the key providers are package keys', the backend is
// reached with the official aws-sdk-go-v2 S3 client and presigned URLs are made by its SigV4
// signer; progress bars come from github.com/schollz/progressbar. What is written here is only
// the orchestration those libraries do not know about: which objects need work, the order of
// the copy/verify/delete steps that make a rewrap or a migration safe to interrupt and rerun,
// and walking the part headers of a multipart object in a plain file.
//
// The package reaches the backend through the Backend interface (an *s3.Client satisfies it)
// and the key provider through KeySource (keys.KMS and keys.LocalFile satisfy it); it never
// imports the gateway's proxy, so the tools keep working from stored data alone.
package tools
