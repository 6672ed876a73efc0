package tools

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3seal/s3seal/format"
)

// RunOptions are common to Rewrap and Migrate.
type RunOptions struct {
	Bucket, Prefix string
	// Concurrency is how many objects are worked on at once; default 8.
	Concurrency int
	// DryRun reports what would be done and changes nothing.
	DryRun bool
	// Limit stops the run after this many objects needed work (0 = no limit), to do a large
	// job in batches; a later run continues where it stopped.
	Limit int64
	// Progress says where progress goes.
	Progress ProgressOptions
}

// item is one listed object.
type item struct {
	key  string
	size int64
}

// errLimit is returned by a handler that found work to do after the limit was reached.
var errLimit = errors.New("limit reached")

// limiter hands out at most max claims (max 0 = unlimited).
type limiter struct {
	max int64
	n   atomic.Int64
	hit atomic.Bool
}

func (l *limiter) claim() bool {
	if l.max <= 0 {
		return true
	}
	if l.n.Add(1) > l.max {
		l.hit.Store(true)
		return false
	}
	return true
}

// handler works on one object and returns its outcome; an error counts as Failed (errLimit:
// not counted, and the run stops).
type handler func(ctx context.Context, it item) (Outcome, error)

// walk lists o.Bucket/o.Prefix and runs h on every object not excluded by skip (nor under
// format.ReservedPrefix, where the gateway keeps its upload records), with
// o.Concurrency workers. When ctx is done it stops listing and dispatching but lets the
// objects in progress finish (their handlers get a context that is not canceled), so an
// interrupted run leaves no object half-done. It returns why it stopped early ("" if not).
func walk(ctx context.Context, b Backend, o RunOptions, verb string, t *tally, lim *limiter,
	skip func(key string) bool, h handler) (stop string, err error) {
	workers := o.Concurrency
	if workers <= 0 {
		workers = 8
	}
	rep := startReporter(verb, t, o.Progress)
	defer rep.stop()

	work := make(chan item)
	halt := make(chan struct{})
	var haltOnce sync.Once
	stopAll := func() { haltOnce.Do(func() { close(halt) }) }
	inner := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				out, err := h(inner, it)
				switch {
				case errors.Is(err, errLimit):
					stopAll()
				case err != nil && out == TooLarge:
					t.add(out)
					t.note(it.key, err)
				case err != nil:
					t.fail(it.key, err)
				default:
					t.add(out)
				}
			}
		}()
	}

	listErr := func() error {
		defer close(work)
		p := s3.NewListObjectsV2Paginator(b, &s3.ListObjectsV2Input{Bucket: aws.String(o.Bucket), Prefix: optional(o.Prefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("listing s3://%s/%s: %w", o.Bucket, o.Prefix, err)
			}
			for _, obj := range page.Contents {
				key := aws.ToString(obj.Key)
				if format.IsReserved(key) {
					continue // the gateway's upload records (FORMAT.md 3.5.3), not objects
				}
				if skip != nil && skip(key) {
					continue
				}
				t.listed.Add(1)
				select {
				case work <- item{key: key, size: aws.ToInt64(obj.Size)}:
				case <-halt:
					t.listed.Add(-1)
					return nil
				case <-ctx.Done():
					t.listed.Add(-1)
					return nil
				}
			}
		}
		return nil
	}()
	wg.Wait()
	switch {
	case lim.hit.Load():
		stop = fmt.Sprintf("stopped after the limit of %d objects; run again to continue", lim.max)
	case ctx.Err() != nil:
		stop = "interrupted; run again to continue"
	}
	return stop, listErr
}
