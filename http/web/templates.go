package web

import (
	"context"

	sb "github.com/switchboard/switchboard"
	sbtemplate "github.com/switchboard/switchboard/template"
)

// TemplatesFrom offers the template feature's SMS templates to the pickers.
func TemplatesFrom(s *sbtemplate.Service) TemplateSource {
	if s == nil {
		return nil
	}
	return serviceTemplates{s}
}

type serviceTemplates struct{ s *sbtemplate.Service }

func (t serviceTemplates) ListTemplates(ctx context.Context, user *sb.User) ([]Template, error) {
	views, err := t.s.List(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(views))
	for _, v := range views {
		out = append(out, Template{ID: v.ID, Name: v.Name, Body: v.Body})
	}
	return out, nil
}
