// Package rules holds the pure rules of the chat export, apart from
// storage and jobs so that they are easy to test and fuzz: captured field
// names and values, export filter expressions, and transcripts with their
// split into CRM task descriptions.
package rules
