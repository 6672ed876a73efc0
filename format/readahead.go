package format

import "io"

// Read-ahead for DecryptReader.WriteTo. A GET through the gateway reads a segment from the
// backend, opens it, and writes it to the client; on one goroutine these steps take turns and
// one stream cannot use more than one core. With two or more segments to go, WriteTo reads and
// opens segment k+1 on a goroutine of its own, into the second of two buffers, while it writes
// segment k. A segment is still handed to w only after it has been authenticated, and the
// reader still ends with the trailer and end-of-stream checks: only the order of work overlaps.

// aheadSeg is one opened segment (out, inside buf) or the reading goroutine's last word (err).
type aheadSeg struct {
	out, buf []byte
	err      error
}

// writeAhead writes the rest of d to w with one segment of read-ahead (see above). The reading
// goroutine works on its own copy of d and hands d's state back with its last segment; if w
// fails, writeAhead returns at once with d failed, and the goroutine stops at its next step:
// the caller must not read src again, and closing src ends a read in progress.
func (d *DecryptReader) writeAhead(w io.Writer) (int64, error) {
	r := *d
	full := make(chan aheadSeg, 1)
	free := make(chan []byte, 2)
	free <- d.buf
	free <- make([]byte, len(d.buf))
	stop := make(chan struct{})
	go r.readAhead(full, free, stop)
	var total int64
	for seg := range full {
		var err error
		if len(seg.out) > 0 {
			var n int
			n, err = w.Write(seg.out)
			total += int64(n)
			if err == nil && n < len(seg.out) {
				err = io.ErrShortWrite
			}
		}
		if err != nil {
			close(stop)
			d.err, d.out = err, nil
			return total, err
		}
		if seg.err != nil { // the reader is done with r: take its state back
			r.buf, r.out = seg.buf, nil
			*d = r
			d.err = seg.err
			if seg.err == io.EOF {
				return total, nil
			}
			return total, seg.err
		}
		free <- seg.buf
	}
	panic("format: read-ahead ended without its last word") // unreachable: readAhead sends one
}

// readAhead opens segments (and, at the end, the trailer) into buffers from free and hands
// them on full until next fails (io.EOF at the end); it stops early when stop is closed.
func (r *DecryptReader) readAhead(full chan<- aheadSeg, free <-chan []byte, stop <-chan struct{}) {
	defer close(full)
	for {
		var buf []byte
		select {
		case <-stop:
			return
		case buf = <-free:
		}
		r.buf = buf
		err := r.next()
		out := r.out
		r.out = nil
		if err != nil {
			out = nil
		}
		select {
		case <-stop:
			return
		case full <- aheadSeg{out, buf, err}:
		}
		if err != nil {
			return
		}
	}
}
