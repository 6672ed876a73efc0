package sigv4

import (
	"crypto/hmac"
	"encoding/hex"
	"sort"
	"strings"
)

// trailerLine is one parsed "name:value" trailing header.
type trailerLine struct{ name, value string }

// readTrailers reads the trailer section after the final chunk, verifies the
// trailer signature (signed mode) and records the declared checksum.
func (d *chunkDecoder) readTrailers() error {
	var lines []trailerLine
	var sig []byte
	skippedBlank := false
	for {
		raw, err := d.readLine(maxTrailerLine)
		if err == errLineAtEOF {
			break // the final empty line is missing: the body just ends
		}
		if err != nil {
			return err
		}
		if len(raw) == 0 {
			// One empty line may precede the trailers (the CRLF after the
			// final chunk's empty data); otherwise it ends the section.
			if len(lines) == 0 && sig == nil && !skippedBlank {
				if _, perr := d.br.Peek(1); perr == nil {
					skippedBlank = true
					continue
				}
			}
			break
		}
		if sig != nil {
			return errTrailer("trailing header after x-amz-trailer-signature")
		}
		name, value, ok := strings.Cut(string(raw), ":")
		if !ok {
			return errTrailer("trailing header without ':'")
		}
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if name == trailerSignature {
			if !d.signed {
				return errTrailer("x-amz-trailer-signature in an unsigned trailer")
			}
			b, herr := hex.DecodeString(value)
			if herr != nil || len(b) != 32 {
				return errTrailer("x-amz-trailer-signature is not 64 hexadecimal characters")
			}
			sig = b
			continue
		}
		if len(lines) >= maxTrailerLines {
			return errTrailer("too many trailing headers")
		}
		if !d.trailerDeclared || name != d.trailerAlg.header {
			return errTrailer("trailing header " + truncate(name, 64) + " was not declared in x-amz-trailer")
		}
		for _, l := range lines {
			if l.name == name {
				return errTrailer("duplicate trailing header " + name)
			}
		}
		lines = append(lines, trailerLine{name, value})
	}
	if d.signed {
		if sig == nil {
			return newError(CodeSignatureDoesNotMatch, "the trailer signature is missing")
		}
		got := signature(d.key, trailerStringToSign(d.amzDate, d.scope, d.prevSig, hexSHA256([]byte(canonicalTrailer(lines)))))
		if !hmac.Equal(got, sig) {
			return newError(CodeSignatureDoesNotMatch, "The trailer signature we calculated does not match the signature you provided.")
		}
	}
	if d.trailerDeclared {
		if len(lines) == 0 {
			return errTrailer("the trailing header " + d.trailerAlg.header + " declared in x-amz-trailer is missing")
		}
		want, ok := decodeChecksum(d.trailerAlg, lines[0].value)
		if !ok {
			return errTrailer("Value for " + d.trailerAlg.header + " trailing header is invalid.")
		}
		d.trailerChecksum = want
	}
	return nil
}

// canonicalTrailer is what the trailer signature covers: each trailing header
// as "name:value\n", sorted by name.
func canonicalTrailer(lines []trailerLine) string {
	sorted := append([]trailerLine(nil), lines...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var b strings.Builder
	for _, l := range sorted {
		b.WriteString(l.name)
		b.WriteByte(':')
		b.WriteString(l.value)
		b.WriteByte('\n')
	}
	return b.String()
}

func errTrailer(msg string) *Error {
	return newError(CodeMalformedTrailerError, "The request contained trailing data that was not well-formed: "+msg)
}
