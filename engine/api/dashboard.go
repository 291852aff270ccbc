package api

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// dashboardHTML is the whole dashboard: one page of HTML, CSS and vanilla JavaScript that
// learns the route paths from /-/routes, so it needs no build step and no configuration.
//
//go:embed dashboard/index.html
var dashboardHTML []byte

// dashboardPolicy keeps the page to itself: it loads nothing from elsewhere, talks to this
// API only, and no other site may frame it (its token box would be a clickjacking target).
const dashboardPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func serveDashboard(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderContentSecurityPolicy, dashboardPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	return c.Send(dashboardHTML)
}
