package format_test

import (
	"testing"

	"github.com/s3seal/s3seal/format"
)

func TestSameKeyID(t *testing.T) {
	id := "1234abcd-12ab-34cd-56ef-1234567890ab"
	arn := "arn:aws:kms:us-east-1:111122223333:key/" + id
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{id, id, true}, {arn, id, true}, {id, arn, true}, {arn, arn, true},
		{"k1", "k1", true}, {"k1", "k2", false}, {"", "", false}, {arn, "other", false},
		{"arn:aws:kms:us-east-1:111122223333:key/x" + id, id, false},
	} {
		if got := format.SameKeyID(c.a, c.b); got != c.want {
			t.Errorf("SameKeyID(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
