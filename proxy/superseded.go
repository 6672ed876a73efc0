package proxy

import (
	"net/http"

	"github.com/s3seal/s3seal/format"
)

// supersededBy reports whether the gateway verified that another writer's object replaced o,
// the object a CompleteMultipartUpload made, so that the Complete may be answered as S3
// answers a Complete overwritten by a later write: 200. Against a backend that lies,
// "verified" means what a read can verify, no more:
//
//   - the bucket is unversioned (o has no version id): a version, once written, does not
//     change, so a 412 about a named version is a lie;
//   - the key now holds (unconditional HEAD) an object with another backend ETag than o and an
//     envelope other than the upload's (the upload id carries it: a different envelope is a
//     different object key or wrapping, not this upload's object shown under a new ETag);
//   - that envelope opens for this bucket and key (the key provider, or the Complete's SSE-C
//     key), and the object authenticates as a whole the way a read checks it before any byte:
//     a single-part object's trailer opens under its key (which binds its stored size), a
//     multipart object's manifest and every part boundary check; a multipart object without
//     a manifest yet is another upload's Complete in progress (concurrent Completes of one
//     key, CompleteMultipartUpload_racey_success), verified by its envelope alone.
//
// Only a gateway that holds the key makes such an object, so the backend cannot invent one;
// it can still show an older genuine object of the key, which any read would serve too
// (whole-object rollback, docs/SECURITY.md). Anything else (plaintext, S3 Encryption Client or
// another customer's SSE-C object, a backend error) is not verified, and the Complete fails.
func (g *Gateway) supersededBy(q *request, o *storedObject) bool {
	if o.versionID != "" {
		return false
	}
	u, err := format.ParseUploadID(q.r.URL.Query().Get("uploadId"))
	if err != nil {
		return false
	}
	cur, err := g.headCurrent(q)
	if err != nil || cur.env == nil || cur.backendETag == "" || sameETag(cur.backendETag, o.backendETag) ||
		cur.env.Encode() == u.Envelope.Encode() {
		g.log.Warn("Complete: a 412 from the backend without another object in the key's place", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
		return false
	}
	key, err := g.openKey(q, cur)
	if err != nil {
		g.log.Warn("Complete: the object in the key's place does not open", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
		return false
	}
	defer key.Zero()
	switch {
	case cur.env.Kind == format.KindMultipart && cur.header.Get(format.MetaManifest) == "":
		// Another upload's Complete, still writing its manifest (concurrent Completes of one
		// key, as S3 allows): its envelope, which opened above for this bucket and key, is
		// all there is to verify yet; readers check its layout once the manifest is there.
	case cur.env.Kind == format.KindMultipart:
		_, err = g.checkMultipart(q, cur, key)
	default:
		err = g.checkSingleTrailer(q, cur, key)
	}
	if err != nil {
		g.log.Warn("Complete: the object in the key's place does not authenticate", "request_id", q.id, "bucket", q.bucket, "key", q.key, "err", err)
		return false
	}
	return true
}

// headCurrent reads the headers of the object the key holds now.
func (g *Gateway) headCurrent(q *request) (*storedObject, error) {
	t := target{q.bucket, q.key, nil}
	resp, err := g.backend.sendSmall(q.ctx(), http.MethodHead, t, nil, nil)
	if err := g.roundTripErr(q, t, resp, err); err != nil {
		return nil, err
	}
	resp.Body.Close()
	return parseStored(resp)
}

// checkSingleTrailer opens the trailer of the single-part object o under its key: it is
// sealed under the key of o's plaintext size, so it authenticates the size and the key.
func (g *Gateway) checkSingleTrailer(q *request, o *storedObject, key *format.ObjectKey) error {
	plain, err := format.DecryptedSize(o.storedSize)
	if err != nil {
		return err
	}
	s, err := key.SingleStream(plain)
	if err != nil {
		return err
	}
	tail, err := g.fetchTail(q, o)
	if err != nil {
		return err
	}
	_, err = s.OpenTrailer(tail)
	return err
}
