// Package dashboard is turnout's live dashboard: the web UI embedded in the
// binary (plain HTML, CSS and JavaScript modules, nothing loaded from the
// internet) and Live, the per-second series per route and target its charts read.
package dashboard

import (
	"cmp"
	"embed"
	"io/fs"
	"net/http"
	"slices"
	"strings"
)

//go:embed ui
var assets embed.FS

// Assets returns the UI files, rooted at the directory holding index.html.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "ui")
	if err != nil {
		panic(err) // the embed directive guarantees "ui" exists
	}
	return sub
}

// Handler serves the UI under prefix (e.g. "/ui/"). The files carry no
// data: every figure comes from the authenticated admin API, so they are
// served without a token. A strict Content-Security-Policy keeps the page
// to its own scripts and the API.
func Handler(prefix string) http.Handler {
	files := http.StripPrefix(strings.TrimSuffix(prefix, "/"), http.FileServerFS(Assets()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// Assets change with the binary; revalidate so an upgrade shows at once.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

func sortSeries(s []SeriesPoints) {
	slices.SortFunc(s, func(a, b SeriesPoints) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Target, b.Target))
	})
}
