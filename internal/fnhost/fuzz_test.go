package fnhost

import (
	"encoding/json"
	"testing"
)

// FuzzErrorDocument: whatever a function process posts to the Runtime API's
// error endpoints, the error turnout passes on is one JSON object.
func FuzzErrorDocument(f *testing.F) {
	f.Add([]byte(`{"errorMessage":"boom","errorType":"Oops"}`), "Runtime.Error")
	f.Add([]byte(`not json`), "")
	f.Add([]byte(`["a"]`), "Custom")
	f.Add([]byte("\xff\xfe"), "Runtime.\"Quoted\"")
	f.Add([]byte(``), "")
	f.Fuzz(func(t *testing.T, body []byte, typ string) {
		doc := errorDocument(body, typ, "Runtime.Unknown")
		var v map[string]any
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatalf("error document %q is not a JSON object: %v", doc, err)
		}
	})
}
