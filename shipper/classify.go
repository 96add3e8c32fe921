package shipper

import (
	"errors"
	"strings"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// class is why a send failed; it picks the retry pace and the SendErrors reason label.
type class int

const (
	classTransient class = iota
	classThrottled
	classConfig
	classInvalid
	classTooLarge
	numClasses
)

func (c class) String() string {
	switch c {
	case classThrottled:
		return "throttled"
	case classConfig:
		return "config"
	case classInvalid:
		return "invalid"
	case classTooLarge:
		return "too_large"
	default:
		return "transient"
	}
}

// retryable reports whether retrying soon can help; the others wait BackoffMax.
func (c class) retryable() bool { return c == classTransient || c == classThrottled }

// Classify names why a send failed, as the SendErrors reason label: "throttled", "transient",
// "config" or "invalid". retryable is false when retrying soon cannot help ("config",
// "invalid"): the shipper still retries those, but only every BackoffMax. Errors it does not
// recognise are "transient". A nil error gives ("", false).
func Classify(err error) (reason string, retryable bool) {
	if err == nil {
		return "", false
	}
	c := classify(err)
	return c.String(), c.retryable()
}

func classify(err error) class {
	var httpErr *HTTPError
	if errors.As(err, &httpErr) {
		return classifyHTTP(httpErr.Status)
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		if c, ok := classifyCode(coded.ErrorCode()); ok {
			return c
		}
	}
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) {
		if c, ok := classifyStatus(resp.HTTPStatusCode()); ok {
			return c
		}
	}
	var signing *v4.SigningError // no credentials to sign with
	if errors.As(err, &signing) {
		return classConfig
	}
	// Timeouts, resets, refused connections, truncated responses and whatever is left: a
	// transient failure until proven otherwise, since dropping is never an option.
	return classTransient
}

func classifyCode(code string) (class, bool) {
	switch code {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
		"Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
		"RequestThrottled", "RequestThrottledException", "SlowDown", "KMSThrottlingException",
		"ServiceQuotaExceededException":
		return classThrottled, true
	case "InternalFailure", "InternalServerError", "InternalError", "InternalFailureException",
		"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
		"ResourceInUseException", "TransactionInProgressException":
		return classTransient, true
	case "ResourceNotFoundException", "IncompleteSignature", "IncompleteSignatureException",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException", "InvalidClientTokenId",
		"SignatureDoesNotMatch", "AuthFailure", "OptInRequired", "NotAuthorized", "InvalidAccessKeyId",
		"RequestExpired", "RequestTimeTooSkewed":
		return classConfig, true
	case "ValidationException", "InvalidArgumentException", "SerializationException",
		"InvalidParameterValue", "InvalidParameterCombination", "InvalidParameterException",
		"MissingParameter", "InvalidQueryParameter", "MalformedQueryString", "UnknownOperationException":
		return classInvalid, true
	}
	for _, p := range []string{"AccessDenied", "KMS", "ExpiredToken", "UnrecognizedClient", "InvalidSignature"} {
		if strings.HasPrefix(code, p) {
			return classConfig, true
		}
	}
	return 0, false
}

// classifyHTTP classes the answer of a plain HTTP receiver: any 4xx but 429 is a wrong URL,
// token or format on our side (retrying soon cannot help), not a rejected record, since such
// a receiver cannot tell the two apart.
func classifyHTTP(status int) class {
	switch {
	case status == 429:
		return classThrottled
	case status >= 400 && status < 500:
		return classConfig
	}
	return classTransient
}

func classifyStatus(status int) (class, bool) {
	switch {
	case status == 429:
		return classThrottled, true
	case status >= 500:
		return classTransient, true
	case status == 401 || status == 403:
		return classConfig, true
	case status >= 400:
		return classInvalid, true
	}
	return 0, false
}
