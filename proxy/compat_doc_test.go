package proxy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

// routerOperations returns every S3 operation name the router can give a request: the
// forwarded sub-resource tables and the names classify passes to its read and write helpers
// (found by parsing routes.go, so a new branch there is seen without a list kept by hand).
// "Unknown" is what a refused, unclassifiable request is called; it is no operation.
func routerOperations(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	for _, table := range []map[string]map[string]subOp{bucketSubresources, objectSubresources} {
		for _, methods := range table {
			for _, op := range methods {
				set[op.op] = true
			}
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "routes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fromClassify := 0
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "classifyOp" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			id, ok := call.Fun.(*ast.Ident)
			if !ok || (id.Name != "read" && id.Name != "write") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: %s(...) with a name that is not a string literal: extend this test", fset.Position(call.Pos()), id.Name)
				return true
			}
			name, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			set[name] = true
			fromClassify++
			return true
		})
		return false
	})
	if fromClassify < 20 {
		t.Fatalf("found only %d operation names in classify: the parse no longer matches routes.go", fromClassify)
	}
	delete(set, "Unknown")
	ops := make([]string, 0, len(set))
	for op := range set {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	return ops
}

// TestCompatibilityDocCoversRouter: every operation the router knows has a row in
// docs/COMPATIBILITY.md's table (a line starting "| `Name` |"), and the table names no
// operation the router does not know.
func TestCompatibilityDocCoversRouter(t *testing.T) {
	doc, err := os.ReadFile("../docs/COMPATIBILITY.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z0-9]+)` \\|").FindAllSubmatch(doc, -1) {
		rows[string(m[1])] = true
	}
	ops := routerOperations(t)
	known := map[string]bool{}
	for _, op := range ops {
		known[op] = true
		if !rows[op] {
			t.Errorf("operation %s (proxy/routes.go) has no row \"| `%s` | ...\" in docs/COMPATIBILITY.md", op, op)
		}
	}
	for op := range rows {
		if !known[op] {
			t.Errorf("docs/COMPATIBILITY.md has a row for %s, which proxy/routes.go does not produce", op)
		}
	}
	t.Logf("%d router operations, all documented", len(ops))
}
