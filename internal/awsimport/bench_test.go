package awsimport

import (
	"encoding/json"
	"fmt"
	"testing"
)

// distribution75 is a get-distribution-config answer with 75 cache
// behaviours of the shapes real distributions have: service prefixes,
// file types under a prefix, versioned paths with "?", exact paths, and
// GET-only static trees, over six origins.
func distribution75() []byte {
	type list struct {
		Quantity int   `json:"Quantity"`
		Items    []any `json:"Items"`
	}
	all := list{7, []any{"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}}
	get := list{2, []any{"GET", "HEAD"}}
	var origins []any
	for i := range 6 {
		origins = append(origins, map[string]any{
			"Id": fmt.Sprintf("origin-%d", i), "DomainName": fmt.Sprintf("o%d.example.com", i),
			"CustomOriginConfig": map[string]any{"OriginProtocolPolicy": "https-only", "OriginReadTimeout": 30},
		})
	}
	orp := "216adef6-5c7f-47e4-b989-5492eafa07d3"
	var bs []any
	for i := range 75 {
		var pattern string
		methods := all
		switch i % 5 {
		case 0:
			pattern = fmt.Sprintf("svc%d/*", i)
		case 1:
			pattern, methods = fmt.Sprintf("svc%d/reports/*.csv", i-1), get
		case 2:
			pattern = fmt.Sprintf("api/v?/item%d/*", i)
		case 3:
			pattern = fmt.Sprintf("legacy/page%d", i)
		case 4:
			pattern, methods = fmt.Sprintf("static/%d/*", i), get
		}
		bs = append(bs, map[string]any{
			"PathPattern": pattern, "TargetOriginId": fmt.Sprintf("origin-%d", i%6),
			"ViewerProtocolPolicy": "redirect-to-https", "AllowedMethods": methods,
			"CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "OriginRequestPolicyId": orp,
		})
	}
	doc := map[string]any{"ETag": "E75", "DistributionConfig": map[string]any{
		"CallerReference": "bench", "Enabled": true,
		"Origins":        list{len(origins), origins},
		"CacheBehaviors": list{len(bs), bs},
		"DefaultCacheBehavior": map[string]any{
			"TargetOriginId": "origin-0", "ViewerProtocolPolicy": "allow-all", "AllowedMethods": all,
			"CachePolicyId": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad", "OriginRequestPolicyId": orp,
		},
	}}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return data
}

// BenchmarkImport75Behaviours is the whole import of a 75-behaviour
// distribution: parse, translate, write, validate with config.Parse, and
// the search for every request shape routed differently.
func BenchmarkImport75Behaviours(b *testing.B) {
	data := distribution75()
	res, err := ImportCloudFront("bench.json", data, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if !res.Complete || len(res.Setup.Routes) != 76 {
		b.Fatalf("complete %v, %d source routes", res.Complete, len(res.Setup.Routes))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ImportCloudFront("bench.json", data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// openAPI500 is an OpenAPI 3 export of a REST API with 500 paths: resources
// with ids under 100 collections, half on Lambda and half on the monolith.
func openAPI500() []byte {
	paths := map[string]any{}
	for i := range 100 {
		lambda := map[string]any{"x-amazon-apigateway-integration": map[string]any{
			"type": "aws_proxy", "httpMethod": "POST",
			"uri": fmt.Sprintf("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:svc%d/invocations", i%20),
		}}
		proxy := func(p string) map[string]any {
			return map[string]any{"x-amazon-apigateway-integration": map[string]any{
				"type": "http_proxy", "httpMethod": "ANY", "uri": "https://monolith.example.com" + p,
			}}
		}
		c := fmt.Sprintf("/c%d", i)
		paths[c] = map[string]any{"get": lambda, "post": lambda}
		paths[c+"/{id}"] = map[string]any{"get": lambda, "put": lambda, "delete": lambda}
		paths[c+"/{id}/items"] = map[string]any{"get": proxy(c + "/{id}/items")}
		paths[c+"/{id}/items/{item}"] = map[string]any{"get": proxy(c + "/{id}/items/{item}")}
		paths[c+"/search"] = map[string]any{"x-amazon-apigateway-any-method": proxy(c + "/search")}
	}
	data, err := json.Marshal(map[string]any{"openapi": "3.0.1", "info": map[string]any{"title": "big"}, "paths": paths})
	if err != nil {
		panic(err)
	}
	return data
}

// BenchmarkImport500Paths is the whole import of a 500-path OpenAPI export.
func BenchmarkImport500Paths(b *testing.B) {
	data := openAPI500()
	res, err := ImportAPIGateway("big.json", data, APIOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Setup.Routes) != 800 || res.Parsed == nil {
		b.Fatalf("%d source routes, config %v", len(res.Setup.Routes), res.Parsed != nil)
	}
	b.Logf("shape search complete: %v, %d shapes routed differently", res.Complete, len(res.Shapes))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ImportAPIGateway("big.json", data, APIOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
