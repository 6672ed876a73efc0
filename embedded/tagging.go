package embedded

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"

	"github.com/johannesboyne/gofakes3"
	bolt "go.etcd.io/bbolt"
)

// Object tagging: GetObjectTagging, PutObjectTagging and DeleteObjectTagging, kept in the
// object's record (gofakes3 has no tagging). An overwrite of the object replaces its tags
// (by the x-amz-tagging header of the new PUT, or none), a copy keeps them, as in S3.
// Bucket tagging is not supported (NotImplemented).

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type taggingXML struct {
	XMLName xml.Name `xml:"Tagging"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

const maxTaggingBody = 64 << 10

func (h *handler) tagging(w http.ResponseWriter, r *http.Request, bucket, key string) {
	if v, ok := r.URL.Query()["versionId"]; ok && (len(v) != 1 || v[0] != "null") {
		writeError(w, r, http.StatusBadRequest, "InvalidArgument", "Invalid version id specified")
		return
	}
	switch r.Method {
	case http.MethodGet:
		rec, err := h.be.record(bucket, key)
		if err != nil {
			writeS3Error(w, r, err)
			return
		}
		out := taggingXML{Xmlns: "http://s3.amazonaws.com/doc/2006-03-01/", TagSet: []tagXML{}}
		for _, t := range rec.Tags {
			out.TagSet = append(out.TagSet, tagXML(t))
		}
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, xml.Header)
		_ = xml.NewEncoder(w).Encode(out)
	case http.MethodPut:
		data, err := io.ReadAll(io.LimitReader(r.Body, maxTaggingBody+1))
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "IncompleteBody", "The request body ended early")
			return
		}
		var in taggingXML
		if len(data) > maxTaggingBody || xml.Unmarshal(data, &in) != nil {
			writeError(w, r, http.StatusBadRequest, "MalformedXML", gofakes3.ErrMalformedXML.Message())
			return
		}
		tags := make([]tag, 0, len(in.TagSet))
		for _, t := range in.TagSet {
			tags = append(tags, tag(t))
		}
		if err := checkTags(tags); err != nil {
			writeS3Error(w, r, err)
			return
		}
		if err := h.be.setTags(bucket, key, tags); err != nil {
			writeS3Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if err := h.be.setTags(bucket, key, nil); err != nil {
			writeS3Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
	}
}

// setTags replaces the tags of an existing object.
func (b *backend) setTags(bucket, key string, tags []tag) error {
	if checkKey(key) != nil {
		return gofakes3.KeyNotFound(key)
	}
	return storageErr(b.db.Update(func(tx *bolt.Tx) error {
		var rec objectRec
		if err := lookup(tx, bucket, key, &rec); err != nil {
			return err
		}
		rec.Tags = tags
		return putJSON(tx.Bucket(rootObjects).Bucket([]byte(bucket)), []byte(key), &rec)
	}))
}

// errorStatus is the HTTP status of an error code of this package or gofakes3's.
func errorStatus(code gofakes3.ErrorCode) int {
	switch code {
	case "InvalidTag", "BadRequest", gofakes3.ErrMalformedXML:
		return http.StatusBadRequest
	case errStorageFull:
		return http.StatusInsufficientStorage
	}
	return code.Status()
}

// writeS3Error renders a backend error as S3 XML; errors that are not S3 errors become an
// InternalError whose text is not shown.
func writeS3Error(w http.ResponseWriter, r *http.Request, err error) {
	var e gofakes3.Error
	if !errors.As(err, &e) {
		writeError(w, r, http.StatusInternalServerError, string(gofakes3.ErrInternal), "We encountered an internal error. Please try again.")
		return
	}
	msg := e.ErrorCode().Message()
	var er *gofakes3.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		msg = er.Message
	}
	writeError(w, r, errorStatus(e.ErrorCode()), string(e.ErrorCode()), msg)
}
