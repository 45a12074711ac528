package web

import (
	"context"

	sb "github.com/switchboard/switchboard"
	"github.com/switchboard/switchboard/form"
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

// FormsFrom offers the forms feature's SMS forms to the bulk send.
func FormsFrom(s *form.Service) FormSource {
	if s == nil {
		return nil
	}
	return serviceForms{s}
}

type serviceForms struct{ s *form.Service }

func (f serviceForms) ListForms(ctx context.Context, user *sb.User) ([]Form, error) {
	list, err := f.s.List(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]Form, 0, len(list))
	for _, x := range list {
		v := Form{ID: x.ID, Name: x.Name}
		if len(x.Questions) > 0 {
			v.FirstQuestion = x.Questions[0].Text
		}
		out = append(out, v)
	}
	return out, nil
}
