package proxy

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"

	"github.com/s3seal/s3seal/format"
)

// The parts of an open upload as Complete and ListParts see them (FORMAT.md 3.6): each part
// number may have a backend part and held copies (parts that can only be the last), and each
// of those is known by its record, which seals the part's MD5, plaintext size and salt.

// storedPart is one stored copy of a part of an open upload.
type storedPart struct {
	number   int
	etag     string // the backend's ETag of the part or of its held copy, quotes removed
	size     int64  // stored size, as the backend lists it
	held     string // key of the held copy; "" for a backend part
	modified string // LastModified, as the backend lists it
	// facts is what the copy's record seals; recorded is false when no record, or more than
	// one that disagree, opened for it (then the copy cannot be completed).
	facts    format.PartFacts
	recorded bool
}

// uploadParts lists the stored copies of the parts first..last of the backend upload
// backendID: the backend's parts (from ListParts, given), the held copies and the records
// of both, opened under key (none opened when key is nil). Records that do not parse or open,
// or that disagree with the size the backend lists, are ignored and counted as tampering.
func (g *Gateway) uploadParts(q *request, backendID string, key *format.ObjectKey, backend map[int]backendPart, first, last int) (map[int][]storedPart, error) {
	parts := map[int][]storedPart{}
	for n, bp := range backend {
		if n < first || n > last {
			continue
		}
		e, ok := format.RecordETag(bp.etag)
		if !ok {
			continue
		}
		parts[n] = append(parts[n], storedPart{number: n, etag: e, size: bp.size, modified: bp.modified})
	}
	// Held copies sort before the id record and the part records ("held/" < "id/" < "part/"),
	// and part records by their 5-digit number: from part 1 on, one listing of the upload's
	// prefix reads them all; from a later part, the held copies and the records from that
	// part on are listed apart. The listing stops after the last part's records.
	prefix := format.PartRecordsOf(backendID)
	stopAt := prefix + fmt.Sprintf("%05d/", last+1)
	stop := func(k string) bool { return k >= stopAt }
	var objs []listedObject
	var err error
	if first <= 1 {
		objs, err = g.listRecordObjects(q, format.UploadRecordsOf(backendID), "", 1000, stop)
	} else {
		var recs []listedObject
		if objs, err = g.listRecordObjects(q, format.HeldPartsOf(backendID), "", 1000, nil); err == nil {
			recs, err = g.listRecordObjects(q, prefix, prefix+fmt.Sprintf("%05d", first), 1000, stop)
			objs = append(objs, recs...)
		}
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, h := range objs {
		switch {
		case strings.HasPrefix(h.Key, prefix):
			names = append(names, h.Key)
			continue
		case !strings.HasPrefix(h.Key, format.HeldPartsOf(backendID)):
			continue // the id record
		}
		n, ok := format.ParseHeldPartKey(backendID, h.Key)
		e, eok := format.RecordETag(h.ETag)
		if !ok || !eok {
			g.obs.Tamper(q.op)
			continue
		}
		if n >= first && n <= last {
			parts[n] = append(parts[n], storedPart{number: n, etag: e, size: h.Size, held: h.Key, modified: h.LastModified})
		}
	}
	if len(parts) == 0 || key == nil {
		return parts, nil // without the key (an SSE-C upload listed without it) no record opens
	}
	type ref struct {
		n    int
		etag string
	}
	found := map[ref][]format.PartFacts{}
	for _, name := range names {
		r, err := format.ParseUploadRecord(backendID, name)
		if err != nil || r.Part == 0 {
			g.obs.Tamper(q.op)
			continue
		}
		f, err := key.OpenPartRecord(q.bucket, q.key, backendID, r)
		if err != nil {
			g.obs.Tamper(q.op)
			g.log.Warn("an upload record does not open: ignored", "request_id", q.id, "bucket", q.bucket, "key", q.key, "part", r.Part)
			continue
		}
		found[ref{r.Part, r.ETag}] = append(found[ref{r.Part, r.ETag}], f)
	}
	for n, copies := range parts {
		for i := range copies {
			c := &copies[i]
			fs := found[ref{n, c.etag}]
			if len(fs) == 0 || !sameFacts(fs) {
				continue
			}
			if format.PartEncryptedSize(fs[0].PlainSize) != c.size {
				g.obs.Tamper(q.op)
				continue
			}
			c.facts, c.recorded = fs[0], true
		}
	}
	return parts, nil
}

// sameFacts reports whether every record in fs seals the same facts (a retried record
// write, or one the backend duplicated, is harmless; two that differ are refused).
func sameFacts(fs []format.PartFacts) bool {
	for _, f := range fs[1:] {
		if f.PlainSize != fs[0].PlainSize || f.Salt != fs[0].Salt || string(f.MD5) != string(fs[0].MD5) {
			return false
		}
	}
	return true
}

// clientETag is the ETag UploadPart answered for the copy c: its plaintext MD5, or with
// encryption.etag backend (or without MD5s) the backend's.
func (c storedPart) clientETag() string {
	if c.facts.MD5 != nil {
		return md5ETag(c.facts.MD5)
	}
	return `"` + c.etag + `"`
}

// pickPart is the copy of a part the client names with etag in CompleteMultipartUpload: a
// recorded copy whose client ETag is etag (false if none).
func pickPart(copies []storedPart, etag string) (storedPart, bool) {
	for _, c := range copies {
		if c.recorded && sameETag(c.clientETag(), etag) {
			return c, true
		}
	}
	return storedPart{}, false
}

// latestPart is the copy ListParts shows for a part number: the most recent (S3 keeps the
// last upload of a part number), recorded copies first.
func latestPart(copies []storedPart) storedPart {
	best := copies[0]
	for _, c := range copies[1:] {
		if c.recorded != best.recorded {
			if c.recorded {
				best = c
			}
			continue
		}
		switch {
		case c.held != "" && best.held != "":
			if c.held > best.held { // held keys start with their time
				best = c
			}
		case strings.Compare(c.modified, best.modified) > 0:
			best = c
		}
	}
	return best
}

// heldCheck passes a held part's stored bytes through (to the tail's upload) while a
// decrypting reader checks them: the header must be the one the part's record describes,
// and every segment, the trailer and the MD5 must verify under the part's key.
type heldCheck struct {
	src  io.Reader
	pw   *io.PipeWriter
	done chan error
}

func newHeldCheck(key *format.ObjectKey, part format.ManifestPart, src io.Reader) *heldCheck {
	pr, pw := io.Pipe()
	c := &heldCheck{src: io.TeeReader(src, pw), pw: pw, done: make(chan error, 1)}
	go func() {
		err := verifyHeld(key, part, pr)
		_, _ = io.Copy(io.Discard, pr) // whatever is left still flows to the upload
		c.done <- err
	}()
	return c
}

func (c *heldCheck) Read(p []byte) (int, error) {
	n, err := c.src.Read(p)
	switch {
	case err == io.EOF:
		c.pw.Close()
	case err != nil:
		c.pw.CloseWithError(err)
	}
	return n, err
}

// wait ends the check and returns its verdict (an error if the bytes did not all pass).
func (c *heldCheck) wait() error {
	c.pw.CloseWithError(io.ErrUnexpectedEOF) // no-op once the source ended
	return <-c.done
}

// verifyHeld reads a held part's stored bytes from r and checks them as a reader would.
func verifyHeld(key *format.ObjectKey, part format.ManifestPart, r io.Reader) error {
	hdr := make([]byte, format.PartHeaderSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return err
	}
	n, plain, err := format.ParsePartHeader(hdr)
	if err != nil {
		return err
	}
	if n != part.Number || plain != part.PlainSize || !bytes.Equal(hdr[format.PartHeaderSize-32:], part.Salt[:]) {
		return fmt.Errorf("%w: header of part %d is not the one its record describes", format.ErrAuth, n)
	}
	s, err := key.PartStream(hdr, part.Number)
	if err != nil {
		return err
	}
	d := s.DecryptAll(r)
	if _, err := io.Copy(io.Discard, d); err != nil {
		return err
	}
	if part.MD5 != nil && subtle.ConstantTimeCompare(d.MD5(), part.MD5) != 1 {
		return fmt.Errorf("%w: part %d's MD5 is not its record's", format.ErrAuth, n)
	}
	return nil
}
