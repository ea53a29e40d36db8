package awsimport

import (
	"fmt"
	"strings"

	"github.com/turnout/turnout/internal/config"
)

// Result is an import: the Setup read, and (when every placeholder has a
// value) the config written for it, and the request shapes it routes
// differently from the source.
type Result struct {
	Setup *Setup
	// Config is the turnout config, Parsed the same parsed; nil while
	// placeholders lack values.
	Config []byte
	Parsed *config.Config
	// Shapes are the request shapes routed differently; Complete is false
	// when the search stopped at its bounds.
	Shapes   []Shape
	Complete bool
}

// ImportCloudFront reads a CloudFront source (see ReadCloudFront), writes
// its turnout config and lists the shapes routed differently, each also a
// finding at the source behaviour that takes it in CloudFront: a MUST-WARN
// where CloudFront refuses a method (403) and turnout sends it somewhere,
// a WARN otherwise. A source behaviour with no turnout route that
// CloudFront does reach is a MUST-WARN.
func ImportCloudFront(file string, data []byte, opt Options) (*Result, error) {
	s, err := ReadCloudFront(file, data, opt)
	if err != nil {
		return nil, err
	}
	return finish(s)
}

// ImportAPIGateway reads an API Gateway export (see ReadAPIGateway) and
// finishes as ImportCloudFront does.
func ImportAPIGateway(file string, data []byte, opt APIOptions) (*Result, error) {
	s, err := ReadAPIGateway(file, data, opt)
	if err != nil {
		return nil, err
	}
	return finish(s)
}

// ImportSAM reads a SAM template (see ReadSAM) and finishes as
// ImportCloudFront does.
func ImportSAM(file string, data []byte, opt SAMOptions) (*Result, error) {
	s, err := ReadSAM(file, data, opt)
	if err != nil {
		return nil, err
	}
	return finish(s)
}

// ImportServerless reads a serverless.yml (see ReadServerless) and
// finishes as ImportCloudFront does.
func ImportServerless(file string, data []byte, opt ServerlessOptions) (*Result, error) {
	s, err := ReadServerless(file, data, opt)
	if err != nil {
		return nil, err
	}
	return finish(s)
}

func finish(s *Setup) (*Result, error) {
	res := &Result{Setup: s}
	if len(s.Placeholders) > 0 {
		return res, nil
	}
	_, c, err := Write(s)
	if err != nil {
		return nil, err
	}
	shapes, reached, complete := shapesOf(s, Turnout{C: c})
	if complete {
		// A source route that is never reached would take requests in
		// turnout that the source sends elsewhere: it is written as a
		// comment only.
		dropped := false
		for i := range s.Routes {
			r := &s.Routes[i]
			if !reached[i] && len(r.Patterns) > 0 {
				r.Patterns, r.Note, dropped = nil, "never reached in the source", true
			}
		}
		if dropped {
			if _, c, err = Write(s); err != nil {
				return nil, err
			}
			shapes, reached, complete = shapesOf(s, Turnout{C: c})
		}
	}
	res.Shapes, res.Complete = shapes, complete
	for i, r := range s.Routes {
		switch {
		case !reached[i] && complete:
			s.add(Info, r.Loc, "%s is never reached: earlier behaviours take every path it matches; written as a comment only", r.From)
		case len(r.Patterns) == 0 && (r.Origin != "" || r.Function != ""):
			s.add(MustWarn, r.Loc, "%s has no turnout route (%s); the shapes below say where its requests go instead", r.From, r.Note)
		}
	}
	for _, sh := range shapes {
		lvl := Warn
		if sh.Source.Target == "" && sh.Turnout.Target != "" {
			lvl = MustWarn
		}
		loc := sh.Source.Loc
		if i := sh.Source.Rule; i >= 0 && i < len(s.Routes) {
			loc = s.Routes[i].Loc
		}
		if loc.File == "" {
			loc.File = s.File
		}
		s.add(lvl, loc, "%s", strings.Replace(sh.String(), "source →", sourceName(s)+" →", 1))
	}
	if !complete {
		s.add(Warn, Loc{File: s.File}, "the request shape search stopped at its bounds (%d states, paths of %d bytes): the list of shapes routed differently may be incomplete", maxShapeStates, maxShapeLen)
	}
	res.Config, res.Parsed, err = Write(s)
	if err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	return res, nil
}

func sourceName(s *Setup) string {
	if strings.Contains(s.Kind, " API") || strings.Contains(s.Kind, "SAM") || strings.Contains(s.Kind, "Serverless") {
		return "API Gateway"
	}
	if strings.Contains(s.Kind, "CloudFormation") || strings.Contains(s.Kind, "distribution") || strings.Contains(s.Kind, "Distribution") {
		return "CloudFront"
	}
	return "source"
}
