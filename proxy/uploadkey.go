package proxy

import (
	"slices"

	"github.com/s3seal/s3seal/format"
	"github.com/s3seal/s3seal/s3err"
)

// mayUseUploadKey applies the credential's KMS key allow-list (Credential.KMSKeyIDs, checked
// by chooseEncryption when an object or upload is created) to an upload being continued. S3
// wants kms:GenerateDataKey and kms:Decrypt on an SSE-KMS upload's key for UploadPart,
// UploadPartCopy and CompleteMultipartUpload, and an upload id is all a credential needs to
// name an upload; without this check a credential could write under any key whose upload id
// it has seen. ListParts and Abort write nothing under the key (and reads through the gateway
// are not limited by the allow-list), so they are not checked; neither are SSE-C uploads,
// whose key the request must present.
//
// The envelope records the key as the provider reported using it (a KMS key ARN for a key id
// or alias, a versioned name for the local file or a PKCS#11 token), while the allow-list and
// the default keys hold the names clients and operators write. A name matches when it is the
// envelope's key id, or when the provider resolves it to that id now: the data-key cache asks
// the provider once per name and context, then answers from memory (counting one use of the
// cached data key). A key rotated to a new version since the upload began no longer resolves to
// the upload's version: credentials without "*" then get AccessDenied for that upload (fail
// closed; it must be started again).
func (g *Gateway) mayUseUploadKey(q *request, env *format.Envelope) error {
	if env.Wrap != format.WrapProvider || slices.Contains(q.cred.KMSKeyIDs, "*") {
		return nil
	}
	var names []string
	for _, n := range append([]string{g.cfg.KeyID, g.defaultKeyID(q.bucket)}, q.cred.KMSKeyIDs...) {
		if n == env.KeyID {
			return nil
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	encCtx, err := format.KMSContext(q.bucket, nil)
	if err != nil {
		return err
	}
	var providerErr error
	for _, n := range names {
		dk, err := g.cfg.Keys.EncryptKey(q.ctx(), n, encCtx, 0)
		if err != nil {
			providerErr = err
			continue
		}
		used := dk.KeyID
		dk.Zero()
		if used == env.KeyID {
			return nil
		}
	}
	if providerErr != nil {
		return providerErr // could not tell: fail closed, as a provider outage
	}
	return s3err.New("AccessDenied", "The credential may not use the upload's KMS key.")
}
