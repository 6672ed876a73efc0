package proxy

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCountingReaderParallel: the part-boundary check of a multipart GET reads several part
// headers of one request at once, all counted into q.storedIn. The total must be exact (and
// `go test -race` must see no race on the counter).
func TestCountingReaderParallel(t *testing.T) {
	var n atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := io.ReadAll(countingReader{bytes.NewReader(make([]byte, 1000+i)), &n})
			if err != nil || len(b) != 1000+i {
				t.Errorf("read %d bytes, %v", len(b), err)
			}
		}()
	}
	wg.Wait()
	if got, want := n.Load(), int64(8*1000+28); got != want {
		t.Fatalf("counted %d bytes, want %d", got, want)
	}
}
