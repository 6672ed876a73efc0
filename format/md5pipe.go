package format

import "hash"

// md5Pipe hashes the plaintext of a multi-segment stream beside the encryption: while segment
// k is hashed on a goroutine of its own, the reader seals it, hands the ciphertext on and
// reads segment k+1 into the other of two buffers. MD5 (about 0.7 GB/s on one core) is the
// slowest step of an upload with a plaintext ETag; in line it bounds one upload stream, in this
// stage one stream can use two cores. Each goroutine hashes one segment and ends, so an
// abandoned reader leaves nothing running for long.
type md5Pipe struct {
	h    hash.Hash
	bufs [2][]byte
	next int
	done chan struct{} // closed when the segment being hashed is done; nil before the first
}

func newMD5Pipe(h hash.Hash) *md5Pipe {
	return &md5Pipe{h: h, bufs: [2][]byte{make([]byte, SegmentSize), make([]byte, SegmentSize)}}
}

// plain returns the buffer for the next segment's plaintext: not the one that may still be
// being hashed.
func (p *md5Pipe) plain() []byte {
	b := p.bufs[p.next]
	p.next ^= 1
	return b
}

// hash starts hashing b after the previous segment is done; b must not change until the
// segment after it is handed to hash, or sum is called.
func (p *md5Pipe) hash(b []byte) {
	p.wait()
	done := make(chan struct{})
	p.done = done
	go func() {
		p.h.Write(b)
		close(done)
	}()
}

func (p *md5Pipe) wait() {
	if p.done != nil {
		<-p.done
		p.done = nil
	}
}

// sum waits for the last segment and returns the MD5 of everything hashed.
func (p *md5Pipe) sum() []byte {
	p.wait()
	return p.h.Sum(nil)
}
