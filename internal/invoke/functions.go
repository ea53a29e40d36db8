package invoke

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Account is the AWS account id in the ARNs of turnout's functions: one of
// the ids AWS documents as an example, so it is never a real account.
const Account = "000000000000"

// FunctionARN is the ARN a function of turnout's has in region:
// arn:aws:lambda:REGION:000000000000:function:NAME.
func FunctionARN(region, name string) string {
	return "arn:aws:lambda:" + region + ":" + Account + ":function:" + name
}

// FunctionConfiguration describes a function as Lambda's
// GetFunctionConfiguration does
// (https://docs.aws.amazon.com/lambda/latest/api/API_FunctionConfiguration.html),
// with the fields turnout can fill. The JSON names are Lambda's.
type FunctionConfiguration struct {
	FunctionName string
	FunctionArn  string
	Runtime      string `json:",omitempty"` // "provided.al2023" for hosted functions
	Handler      string `json:",omitempty"` // what the runtime gets in _HANDLER
	Description  string
	Timeout      int // seconds
	MemorySize   int // MB
	CodeSize     int64
	LastModified string // 2006-01-02T15:04:05.000-0700, as Lambda writes it
	Version      string
	// State is "Active" and LastUpdateStatus "Successful": a configured
	// function is ready to be invoked (the SDKs' FunctionActiveV2 and
	// FunctionUpdatedV2 waiters read them).
	State            string
	LastUpdateStatus string
	PackageType      string   // "Zip"
	Architectures    []string `json:",omitempty"` // "x86_64" or "arm64"
}

// LastModifiedLayout is how Lambda writes FunctionConfiguration.LastModified.
const LastModifiedLayout = "2006-01-02T15:04:05.000-0700"

// maxListItems is the most functions one ListFunctions page holds, as on Lambda.
const maxListItems = 50

// serveListFunctions answers ListFunctions
// (GET /2015-03-31/functions/?Marker=&MaxItems=): the functions sorted by
// name, a page at a time; NextMarker (the last name of the page) asks for
// the next one.
func (s *server) serveListFunctions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := maxListItems
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			writeAPIError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("MaxItems %q: use a number from 1 to 10000", v))
			return
		}
		limit = min(n, maxListItems)
	}
	fns := s.configurations()
	marker := q.Get("Marker")
	if marker != "" {
		i, _ := slices.BinarySearchFunc(fns, marker, func(c FunctionConfiguration, m string) int { return strings.Compare(c.FunctionName, m) })
		if i < len(fns) && fns[i].FunctionName == marker {
			i++
		}
		fns = fns[i:]
	}
	var next *string
	if len(fns) > limit {
		fns = fns[:limit]
		next = &fns[limit-1].FunctionName
	}
	writeJSON(w, struct {
		Functions  []FunctionConfiguration
		NextMarker *string
	}{append([]FunctionConfiguration{}, fns...), next})
}

// serveGetFunction answers GetFunction (GET /2015-03-31/functions/{name})
// and, with configOnly, GetFunctionConfiguration (.../{name}/configuration).
func (s *server) serveGetFunction(w http.ResponseWriter, r *http.Request, escName string, configOnly bool) {
	name, qualifier, ok := functionFromPath(w, r, escName)
	if !ok {
		return
	}
	fns := s.configurations()
	i, found := slices.BinarySearchFunc(fns, name, func(c FunctionConfiguration, n string) int { return strings.Compare(c.FunctionName, n) })
	if !found || (qualifier != "" && qualifier != "$LATEST") {
		what := name
		if found {
			what = fns[i].FunctionArn + ":" + qualifier
		}
		writeAPIError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+what)
		return
	}
	if configOnly {
		writeJSON(w, fns[i])
		return
	}
	// Code would say where to download the function's package; a hosted
	// function is a local executable, so there is nothing to download.
	writeJSON(w, struct {
		Configuration FunctionConfiguration
		Code          struct{}
	}{Configuration: fns[i]})
}

// configurations returns opts.Configurations sorted by name.
func (s *server) configurations() []FunctionConfiguration {
	var fns []FunctionConfiguration
	if s.opts.Configurations != nil {
		fns = s.opts.Configurations()
	}
	fns = slices.Clone(fns)
	slices.SortFunc(fns, func(a, b FunctionConfiguration) int { return strings.Compare(a.FunctionName, b.FunctionName) })
	return fns
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeAPIError(w, http.StatusInternalServerError, "ServiceException", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
