package jsonstr

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// stdJSON is encoding/json's quoting of s with HTML escaping off.
func stdJSON(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// stdSlog is log/slog's JSONHandler's quoting of s, cut out of a record.
func stdSlog(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	r := slog.NewRecord(time.Time{}, slog.LevelInfo, "", 0)
	r.AddAttrs(slog.String("k", s))
	slog.NewJSONHandler(&buf, nil).Handle(context.Background(), r)
	out := buf.Bytes()
	i := bytes.Index(out, []byte(`"k":`))
	if i < 0 || !bytes.HasSuffix(out, []byte("}\n")) {
		t.Fatalf("unexpected slog line %q", out)
	}
	return out[i+len(`"k":`) : len(out)-2]
}

func check(t *testing.T, s string) {
	t.Helper()
	if got, want := Append(nil, s), stdJSON(t, s); !bytes.Equal(got, want) {
		t.Errorf("Append(%q) = %s, encoding/json %s", s, got, want)
	}
	if got, want := AppendSlog(nil, s), stdSlog(t, s); !bytes.Equal(got, want) {
		t.Errorf("AppendSlog(%q) = %s, slog %s", s, got, want)
	}
}

// Every byte, every pair of interesting bytes, and the runes treated
// specially, against the standard library's encoders.
func TestAppendLikeStdlib(t *testing.T) {
	var ss []string
	for c := range 256 {
		ss = append(ss, string(rune(c)), string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"z")
	}
	edge := []byte{0, '\b', '\f', 0x1f, ' ', '"', '\\', '<', '>', '&', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe2, 0xed, 0xf0, 0xf4, 0xff}
	for _, a := range edge {
		for _, b := range edge {
			ss = append(ss, string([]byte{a, b}), string([]byte{a, 0x80, b}))
		}
	}
	ss = append(ss, "", "\u2028\u2029", "x\u2028y\u2029z", "\u2027\u202a", "\xe2\x80", "\xe2\x80\xa8\xa8",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xef\xbf\xbd", "😀", "\xf0\x9f\x98", "日本語", "<script>&amp;</script>")
	for _, s := range ss {
		check(t, s)
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"\\\b\f\n\r\t\x00\x1f", "\xff\u2028<&>"} {
		f.Add(s)
	}
	f.Fuzz(check)
}
