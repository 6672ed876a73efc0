package benchutil

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Point is one throughput measurement: object size in bytes, MB/s (10^6 bytes per second).
type Point struct {
	Size int64
	MBps float64
}

// Series is one line of the throughput plot.
type Series struct {
	Name   string
	Points []Point
}

var seriesColors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// ThroughputPlot writes a PNG of throughput against object size to path (both axes log scale;
// every MBps must be above 0).
func ThroughputPlot(path, title string, series []Series) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "object size"
	p.Y.Label.Text = "MB/s (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = sizeTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, s := range series {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j].X, xys[j].Y = float64(pt.Size), pt.MBps
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s.Name, err)
		}
		c := seriesColors[i%len(seriesColors)]
		line.Color, points.Color = c, c
		if i%2 == 1 {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		p.Add(line, points)
		p.Legend.Add(s.Name, line, points)
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// sizeTicks labels a log-scale axis of byte sizes at every power of 4 (4 KiB, 16 KiB, ...).
type sizeTicks struct{}

func (sizeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for v := float64(1 << 10); v <= hi*1.01; v *= 4 {
		if v >= lo*0.99 {
			ts = append(ts, plot.Tick{Value: v, Label: SizeLabel(int64(v))})
		}
	}
	return ts
}

// SizeLabel renders a byte count as "4 KiB", "64 MiB", "1 GiB".
func SizeLabel(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
