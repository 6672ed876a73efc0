package tools

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Outcome names one way an object was handled; a run counts objects per outcome.
type Outcome int

// Outcomes. Not every tool uses every one.
const (
	Done         Outcome = iota // rewrapped / migrated (or would be, in a dry run)
	Skipped                     // already in the target state
	NotEncrypted                // rewrap: no s3seal envelope
	CustomerKey                 // rewrap: SSE-C envelope, cannot be rewrapped without the customer's key
	Foreign                     // migrate: written by the AWS S3 Encryption Client, left alone
	TooLarge                    // migrate: above the copy limit, refused
	Failed                      // an error; the object was left as it was
	numOutcomes
)

// Summary is what a rewrap or migrate run did.
type Summary struct {
	Listed int64               // objects listed under the prefix
	Counts [numOutcomes]int64  // objects per outcome
	Labels [numOutcomes]string // the tool's word for each outcome ("" = not used)
	Errors []string            // the first errors, "key: message"
	Stop   string              // why the run stopped before the end ("" = it did not)
	Rate   float64             // objects handled per second
	Took   time.Duration       // wall time
}

// Count returns the number of objects with outcome o.
func (s Summary) Count(o Outcome) int64 { return s.Counts[o] }

// Complete reports a run that went through every listed object without a failure.
func (s Summary) Complete() bool {
	return s.Stop == "" && s.Counts[Failed] == 0 && s.Counts[TooLarge] == 0
}

// String is the one-line summary: "listed=N rewrapped=N skipped=N ... failed=N".
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listed=%d", s.Listed)
	for o, l := range s.Labels {
		if l != "" {
			fmt.Fprintf(&b, " %s=%d", l, s.Counts[o])
		}
	}
	fmt.Fprintf(&b, " took=%s rate=%.1f/s", s.Took.Round(time.Millisecond), s.Rate)
	return b.String()
}

// maxErrors is how many error messages a Summary keeps.
const maxErrors = 20

// tally counts a run's progress; safe for concurrent use.
type tally struct {
	labels [numOutcomes]string
	listed atomic.Int64
	counts [numOutcomes]atomic.Int64
	start  time.Time

	mu     sync.Mutex
	errors []string
}

func newTally(labels [numOutcomes]string) *tally {
	return &tally{labels: labels, start: time.Now()}
}

func (t *tally) add(o Outcome) { t.counts[o].Add(1) }

func (t *tally) fail(key string, err error) {
	t.counts[Failed].Add(1)
	t.note(key, err)
}

// note keeps an error message for the summary without counting a failure.
func (t *tally) note(key string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.errors) < maxErrors {
		t.errors = append(t.errors, key+": "+err.Error())
	}
}

func (t *tally) handled() int64 {
	var n int64
	for i := range t.counts {
		n += t.counts[i].Load()
	}
	return n
}

func (t *tally) summary(stop string) Summary {
	s := Summary{Listed: t.listed.Load(), Labels: t.labels, Stop: stop, Took: time.Since(t.start)}
	for i := range t.counts {
		s.Counts[i] = t.counts[i].Load()
	}
	if sec := s.Took.Seconds(); sec > 0 {
		s.Rate = float64(t.handled()) / sec
	}
	t.mu.Lock()
	s.Errors = append([]string(nil), t.errors...)
	t.mu.Unlock()
	return s
}

// counted lists the counts per outcome: "rewrapped 80, skipped 20, ...".
func (t *tally) counted() string {
	var parts []string
	for o, l := range t.labels {
		if l != "" {
			parts = append(parts, fmt.Sprintf("%s %d", l, t.counts[o].Load()))
		}
	}
	return strings.Join(parts, ", ")
}

// line is the progress text: counts per outcome and the rate.
func (t *tally) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d listed, %d done: %s", t.listed.Load(), t.handled(), t.counted())
	rate := 0.0
	if sec := time.Since(t.start).Seconds(); sec > 0 {
		rate = float64(t.handled()) / sec
	}
	fmt.Fprintf(&b, ", %.1f objects/s", rate)
	return b.String()
}

// ProgressOptions say where and how progress is shown.
type ProgressOptions struct {
	// W receives the progress (usually stderr); nil = none.
	W io.Writer
	// Bar draws a progress bar (for a terminal); otherwise a plain line every Interval.
	Bar bool
	// Interval between plain progress lines; default 10s.
	Interval time.Duration
}

// IsTerminal reports whether w is a character device (a terminal), where a bar makes sense.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// reporter shows a tally's progress until stop is called.
type reporter struct {
	stopc chan struct{}
	done  chan struct{}
}

func startReporter(verb string, t *tally, o ProgressOptions) *reporter {
	r := &reporter{stopc: make(chan struct{}), done: make(chan struct{})}
	if o.W == nil {
		close(r.done)
		return r
	}
	interval := o.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	var bar *progressbar.ProgressBar
	if o.Bar {
		interval = 200 * time.Millisecond
		bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(o.W),
			progressbar.OptionSetDescription(verb),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("objects"),
		)
	}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		show := func() {
			if bar == nil {
				fmt.Fprintf(o.W, "%s: %s\n", verb, t.line())
				return
			}
			if n := t.listed.Load(); n > 0 {
				bar.ChangeMax64(n)
			}
			bar.Describe(verb + " (" + t.counted() + ")")
			_ = bar.Set64(t.handled())
		}
		for {
			select {
			case <-tick.C:
				show()
			case <-r.stopc:
				show()
				if bar != nil {
					_ = bar.RenderBlank() // draw the final state (Finish would claim 100%)
					fmt.Fprintln(o.W)
				}
				return
			}
		}
	}()
	return r
}

func (r *reporter) stop() {
	select {
	case <-r.stopc:
	default:
		close(r.stopc)
	}
	<-r.done
}
