package metrics

import "github.com/prometheus/client_golang/prometheus"

// CacheSide are the cumulative counters of one side of the data-key cache.
type CacheSide struct {
	Hits, Misses, Evictions uint64
}

// CacheStats are the data-key cache's cumulative counters (cache.Cache.Stats, adapted by the
// caller so that this package does not depend on the cache).
type CacheStats struct {
	Encrypt, Decrypt CacheSide
}

// cacheCollector reads the cache's counters at scrape time.
type cacheCollector struct {
	stats                   func() CacheStats
	hits, misses, evictions *prometheus.Desc
}

// WatchCache exports the data-key cache's hits, misses and evictions (label side: encrypt or
// decrypt), read from stats at every scrape. Call it once.
func (m *Metrics) WatchCache(stats func() CacheStats) {
	desc := func(n, help string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_datakey_cache_"+n, help, []string{"side"}, nil)
	}
	m.reg.MustRegister(&cacheCollector{
		stats: stats,
		hits: desc("hits_total", "Data-key cache lookups answered from the cache, by side (encrypt: new objects, "+
			"decrypt: reading objects)."),
		misses: desc("misses_total", "Data-key cache lookups that needed the key provider, by side."),
		evictions: desc("evictions_total", "Cached data keys dropped (zeroed) for age, capacity or use limits, "+
			"by side."),
	})
}

// Describe implements prometheus.Collector.
func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hits
	ch <- c.misses
	ch <- c.evictions
}

// Collect implements prometheus.Collector.
func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, side := range []struct {
		name string
		s    CacheSide
	}{{"encrypt", s.Encrypt}, {"decrypt", s.Decrypt}} {
		ch <- prometheus.MustNewConstMetric(c.hits, prometheus.CounterValue, float64(side.s.Hits), side.name)
		ch <- prometheus.MustNewConstMetric(c.misses, prometheus.CounterValue, float64(side.s.Misses), side.name)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(side.s.Evictions), side.name)
	}
}
