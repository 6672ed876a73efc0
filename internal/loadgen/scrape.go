package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

// Sample is a process's goroutines and resident memory as its /metrics reports them (the Go
// and process collectors of client_golang).
type Sample struct {
	Goroutines int
	RSS        int64 // bytes
}

func (s Sample) String() string {
	return fmt.Sprintf("%d goroutines, RSS %.1f MiB", s.Goroutines, float64(s.RSS)/(1<<20))
}

// Scrape fetches metricsURL (".../metrics") and returns go_goroutines and
// process_resident_memory_bytes.
func Scrape(ctx context.Context, metricsURL string) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return Sample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Sample{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return Sample{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("loadgen: %s: status %d", metricsURL, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return Sample{}, fmt.Errorf("loadgen: parsing %s: %w", metricsURL, err)
	}
	gauge := func(name string) (float64, error) {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetGauge() == nil {
			return 0, fmt.Errorf("loadgen: %s has no gauge %s", metricsURL, name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	g, err := gauge("go_goroutines")
	if err != nil {
		return Sample{}, err
	}
	rss, err := gauge("process_resident_memory_bytes")
	if err != nil {
		return Sample{}, err
	}
	return Sample{Goroutines: int(g), RSS: int64(rss)}, nil
}
