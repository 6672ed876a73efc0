package benchutil

import (
	"fmt"
	"strings"
)

// Status values of a Figure.
const (
	Met         = "MET"
	Missed      = "MISSED"
	NoTarget    = "-"
	NotMeasured = "NOT MEASURED"
)

// Figure is one row of the benchmark table: what was measured, its value, the target and
// whether the value meets it.
type Figure struct {
	Name   string
	Value  string
	Target string
	Status string
}

// AtMost is a figure whose target is an upper bound; format renders both value and limit
// (e.g. "%.2f×").
func AtMost(name, format string, v, limit float64) Figure {
	return Figure{Name: name, Value: fmt.Sprintf(format, v), Target: "≤ " + fmt.Sprintf(format, limit), Status: status(v <= limit)}
}

// AtLeast is a figure whose target is a lower bound.
func AtLeast(name, format string, v, limit float64) Figure {
	return Figure{Name: name, Value: fmt.Sprintf(format, v), Target: "≥ " + fmt.Sprintf(format, limit), Status: status(v >= limit)}
}

// Info is a figure without a target (printed for context).
func Info(name, value string) Figure {
	return Figure{Name: name, Value: value, Target: NoTarget, Status: NoTarget}
}

// Bound is a figure without a target that measures a limit of the setup rather than the
// gateway (e.g. the pass-through proxy ÷ direct: what any proxy hop costs on this machine);
// its name is prefixed "bound: " so the table keeps it apart from the gateway's figures.
func Bound(name, value string) Figure {
	return Figure{Name: "bound: " + name, Value: value, Target: NoTarget, Status: NoTarget}
}

// Unmeasured is a figure that this run could not measure, with the reason as its value.
func Unmeasured(name, target, why string) Figure {
	return Figure{Name: name, Value: why, Target: target, Status: NotMeasured}
}

func status(ok bool) string {
	if ok {
		return Met
	}
	return Missed
}

// Table is the list of figures of one run, in the order they were added.
type Table struct {
	Rows []Figure
}

// Add appends figures.
func (t *Table) Add(f ...Figure) { t.Rows = append(t.Rows, f...) }

// Count returns how many rows have the given status.
func (t *Table) Count(status string) int {
	n := 0
	for _, r := range t.Rows {
		if r.Status == status {
			n++
		}
	}
	return n
}

// Markdown renders the table as a Markdown table.
func (t *Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| figure | measured | target | |\n|---|---|---|---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.Name), cell(r.Value), cell(r.Target), r.Status)
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
