package benchutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCPUSecondsGrowsWithWork(t *testing.T) {
	before, err := CPUSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Busy until 0.2 s of CPU time show up; on a loaded machine that takes longer than 0.2 s,
	// so only a counter that does not move fails (after 20 s).
	deadline := time.Now().Add(20 * time.Second)
	for x := 0; ; x++ {
		if x%1_000_000 == 0 {
			now, err := CPUSeconds(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if now-before >= 0.2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CPU time grew by %.2f s over 20 s of busy loop", now-before)
			}
		}
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestPeakRSSSeesAnAllocation(t *testing.T) {
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	before, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = byte(i)
	}
	after, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after < before+32<<20 {
		t.Errorf("peak RSS %d -> %d after touching 64 MiB", before, after)
	}
	_ = b[len(b)-1]
}

func TestMedianPercentile(t *testing.T) {
	if m := Median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := Median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	if p := Percentile(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(ds, 100); p != 100*time.Millisecond {
		t.Errorf("p100 = %v", p)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Percentile sorted its input")
	}
}

func TestTable(t *testing.T) {
	var tb Table
	tb.Add(AtMost("cpu", "%.2f×", 1.05, 1.10), AtLeast("ops", "%.2f×", 0.7, 0.8), Info("x", "a|b"), Unmeasured("y", "≤ 1", "no tool"),
		Bound("hop", "0.90"))
	if tb.Count(Met) != 1 || tb.Count(Missed) != 1 || tb.Count(NotMeasured) != 1 || tb.Count(NoTarget) != 2 {
		t.Errorf("counts: %+v", tb.Rows)
	}
	md := tb.Markdown()
	for _, want := range []string{"| cpu | 1.05× | ≤ 1.10× | MET |", "| ops | 0.70× | ≥ 0.80× | MISSED |", `a\|b`, "| bound: hop | 0.90 | - | - |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestThroughputPlotWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.png")
	err := ThroughputPlot(path, "t", []Series{{Name: "a", Points: []Point{{4 << 10, 10}, {1 << 20, 300}}}, {Name: "b", Points: []Point{{4 << 10, 8}, {1 << 20, 200}}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
		t.Fatalf("not a PNG (%d bytes, %v)", len(b), err)
	}
}
