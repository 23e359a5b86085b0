#!/usr/bin/env python3
"""Checks of template.yaml that cfn-lint cannot make: the safe deploy default and least privilege.

Run with the Python that has cfn-lint (scripts/test.sh does): `python3 tests/template_test.py`.
The template is read with cfn-lint's own loader (`cfnlint.decode.decode`), so the short tags
(`!Ref`, `!If`, `!Sub`, ...) arrive as their long forms (`{"Ref": ...}`, `{"Fn::If": [...]}`).
A small evaluator then resolves the Rules, Conditions and environment variables for given
parameter values, the way CloudFormation would at change-set time. Set TEMPLATE_YAML to check
another file (e.g. a deliberately broken copy).
"""

import os
import re
import unittest
from pathlib import Path

from cfnlint.decode import decode

TEMPLATE = Path(
    os.environ.get("TEMPLATE_YAML", Path(__file__).resolve().parent.parent / "template.yaml")
)

# Parameter -> the IMGFN_* variable it sets; each is left out of the environment when empty.
OPTIONAL_ENV = {
    "SigningKeys": "IMGFN_SIGNING_KEYS",
    "AllowedSizes": "IMGFN_ALLOWED_SIZES",
    "AllowedFormats": "IMGFN_ALLOWED_FORMATS",
    "MaxQuality": "IMGFN_MAX_QUALITY",
    "PublicUrl": "IMGFN_PUBLIC_URL",
    "UploadToken": "IMGFN_UPLOAD_TOKEN",
}
# Parameter -> variable, always set.
PLAIN_ENV = {
    "OriginalsPrefix": "IMGFN_PREFIX",
    "RenditionsPrefix": "IMGFN_RENDITIONS_PREFIX",
    "CacheMiB": "IMGFN_CACHE_MIB",
    "CacheControl": "IMGFN_CACHE_CONTROL",
    "UploadPrefix": "IMGFN_UPLOAD_PREFIX",
    "EnableGallery": "IMGFN_GALLERY",
}
# Variables that may legitimately be the empty string: plain strings whose app default is "".
MAY_BE_EMPTY = {"IMGFN_PREFIX"}

KEYS = "k1:my-signing-secret-2026"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:imgfn/signing-keys-AbCdEf"
SIZES = "64,128,256,512,1024,2048"

NO_VALUE = object()  # what Ref AWS::NoValue resolves to
RULE_FUNCTIONS = {"Ref", "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"}


def load():
    template, matches = decode(str(TEMPLATE))
    if template is None or matches:
        raise AssertionError(f"{TEMPLATE} does not load: {[str(m) for m in matches]}")
    return template


class Evaluator:
    """Resolves the intrinsic functions this template uses, for one set of parameter values."""

    def __init__(self, template, **overrides):
        params = template["Parameters"]
        for name in overrides:
            if name not in params:
                raise AssertionError(f"no parameter {name}")
        self.template = template
        self.values = {}
        for name, spec in params.items():
            value = str(overrides.get(name, spec.get("Default", "")))
            if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
                raise AssertionError(f"{name}={value!r} is not an allowed value")
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
                raise AssertionError(f"{name}={value!r} does not match its AllowedPattern")
            self.values[name] = value

    def condition(self, name):
        return self.eval(self.template["Conditions"][name])

    def eval(self, node, only=None):
        """Value of `node`; with `only`, any function outside that set is an error."""
        if isinstance(node, list):
            return [self.eval(n, only) for n in node]
        if not (isinstance(node, dict) and len(node) == 1):
            return node
        ((fn, arg),) = node.items()
        if not (fn == "Ref" or fn.startswith("Fn::") or fn == "Condition"):
            return node
        if only is not None and fn not in only:
            raise AssertionError(f"{fn} is not allowed here (only {sorted(only)})")
        if fn == "Ref":
            if arg in self.values:
                return self.values[arg]
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg.startswith("AWS::") or arg in self.template["Resources"]:
                return f"<{arg}>"
            raise AssertionError(f"Ref to unknown {arg}")
        if fn == "Fn::Equals":
            a, b = (self.eval(x, only) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            (x,) = arg
            return not self.eval(x, only)
        if fn == "Fn::And":
            return all(self.eval(x, only) for x in arg)
        if fn == "Fn::Or":
            return any(self.eval(x, only) for x in arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::If":
            name, yes, no = arg
            return self.eval(yes if self.condition(name) else no, only)
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg

            def sub(m):
                name = m.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in variables:
                    return str(self.eval(variables[name], only))
                return str(self.eval({"Ref": name}, only))

            return re.sub(r"\$\{([^}]+)\}", sub, text)
        raise AssertionError(f"the test's evaluator does not know {fn}")

    def refusals(self):
        """AssertDescriptions of the failing assertions: empty when the deploy may go ahead."""
        failed = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.eval(rule["RuleCondition"], RULE_FUNCTIONS):
                continue
            for assertion in rule["Assertions"]:
                if not self.eval(assertion["Assert"], RULE_FUNCTIONS):
                    failed.append(f"{name}: {assertion.get('AssertDescription', '')}")
        return failed

    def environment(self):
        variables = self.template["Resources"]["ImageFunction"]["Properties"]["Environment"][
            "Variables"
        ]
        env = {}
        for key, node in variables.items():
            value = self.eval(node)
            if value is not NO_VALUE:
                env[key] = str(value)
        return env


class Parameters(unittest.TestCase):
    def setUp(self):
        self.params = load()["Parameters"]

    def test_secrets_are_noecho(self):
        for name in ["SigningKeys", "UploadToken"]:
            self.assertIs(self.params[name].get("NoEcho"), True, name)
            self.assertEqual(self.params[name].get("Default"), "", name)

    def test_new_parameters_default_to_unset(self):
        for name in ["SigningKeys", "SigningKeysSecretArn", "AllowedSizes", "AllowedFormats",
                     "MaxQuality", "PublicUrl"]:
            self.assertEqual(self.params[name]["Type"], "String", name)
            self.assertEqual(self.params[name].get("Default"), "", name)

    def test_unsigned_access_is_opt_in(self):
        p = self.params["AllowUnsignedPublicAccess"]
        self.assertEqual(p["Default"], "false")
        self.assertEqual(sorted(p["AllowedValues"]), ["false", "true"])

    def test_reserved_concurrency_kept(self):
        self.assertIn("ReservedConcurrency", self.params)
        props = load()["Resources"]["ImageFunction"]["Properties"]
        self.assertEqual(props["ReservedConcurrentExecutions"], {"Ref": "ReservedConcurrency"})

    def test_patterns_accept_what_the_app_parses(self):
        cases = {
            "SigningKeys": (
                ["", KEYS, "k1:0123456789abcdef,k-2_old:colons:are:fine:here"],
                ["k1", "k1:short", "bad id:0123456789abcdef", "k1:0123456789abcdef,",
                 "x" * 33 + ":0123456789abcdef"],
            ),
            "SigningKeysSecretArn": (
                ["", SECRET_ARN,
                 "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:keys-AbCdEf"],
                ["imgfn/signing-keys", "arn:aws:s3:::bucket", SECRET_ARN + " "],
            ),
            "AllowedSizes": (
                ["", "1", SIZES, "16383"],
                ["0", "64, 128", "64,,128", "64,", "-1", "abc"],
            ),
            "AllowedFormats": (
                ["", "webp,avif,jpeg,auto", "png", "gif,json"],
                ["jpg", "webp, avif", "WEBP", "webp,", "bmp"],
            ),
            "MaxQuality": (["", "1", "80", "100"], ["0", "101", "080", "q80", " 80"]),
            "PublicUrl": (
                ["", "https://images.example.com", "http://localhost:8080"],
                ["images.example.com", "https://images.example.com/", "https://x.com/a",
                 "ftp://x.com"],
            ),
        }
        for name, (good, bad) in cases.items():
            pattern = self.params[name]["AllowedPattern"]
            for value in good:
                self.assertTrue(re.fullmatch(pattern, value), f"{name} should accept {value!r}")
            for value in bad:
                self.assertFalse(re.fullmatch(pattern, value), f"{name} should refuse {value!r}")


class Rules(unittest.TestCase):
    def setUp(self):
        self.template = load()
        self.assertTrue("Rules" in self.template, f"{TEMPLATE} has no Rules section")

    def refusals(self, **params):
        return Evaluator(self.template, **params).refusals()

    def test_default_deploy_is_refused(self):
        refused = self.refusals()
        self.assertTrue(refused, "a deploy with every default must be refused")
        text = " ".join(refused)
        for word in ["SigningKeys", "SigningKeysSecretArn", "AllowUnsignedPublicAccess=true",
                     "AllowedSizes"]:
            self.assertIn(word, text, "the refusal should say how to fix it")

    def test_no_keys_not_opted_in_is_refused(self):
        self.assertTrue(self.refusals(AllowUnsignedPublicAccess="false"))
        self.assertTrue(self.refusals(AllowUnsignedPublicAccess="false", AllowedSizes=SIZES))

    def test_no_keys_opted_in_without_sizes_is_refused(self):
        refused = self.refusals(AllowUnsignedPublicAccess="true")
        self.assertTrue(refused)
        self.assertIn("AllowedSizes", " ".join(refused))
        self.assertTrue(
            self.refusals(AllowUnsignedPublicAccess="true", AllowedFormats="webp,avif,jpeg,auto",
                          MaxQuality="80"),
            "formats and quality do not replace the size ladder",
        )

    def test_no_keys_opted_in_with_sizes_is_allowed(self):
        self.assertEqual(self.refusals(AllowUnsignedPublicAccess="true", AllowedSizes=SIZES), [])

    def test_keys_are_enough(self):
        self.assertEqual(self.refusals(SigningKeys=KEYS), [])
        self.assertEqual(self.refusals(SigningKeysSecretArn=SECRET_ARN), [])
        self.assertEqual(self.refusals(SigningKeys=KEYS, AllowUnsignedPublicAccess="true"), [])
        self.assertEqual(self.refusals(SigningKeys=KEYS, AllowedSizes=SIZES), [])

    def test_both_key_sources_are_refused(self):
        self.assertTrue(self.refusals(SigningKeys=KEYS, SigningKeysSecretArn=SECRET_ARN))

    def test_rules_survive_the_sam_transform(self):
        try:
            from cfnlint.template import Template
            from cfnlint.template.transforms._sam import sam
        except ImportError as e:  # private to cfn-lint: skip rather than fail if it moves
            self.skipTest(f"cfn-lint's SAM transform is not importable: {e}")
        matches, transformed = sam(Template(str(TEMPLATE), self.template, ["us-east-1"]))
        self.assertEqual(matches, [])
        self.assertEqual(transformed["Rules"], self.template["Rules"])


class Environment(unittest.TestCase):
    def setUp(self):
        self.template = load()
        self.variables = self.template["Resources"]["ImageFunction"]["Properties"][
            "Environment"]["Variables"]

    def env(self, **params):
        return Evaluator(self.template, **params).environment()

    def test_each_parameter_sets_its_variable(self):
        for param, var in PLAIN_ENV.items():
            self.assertEqual(self.variables[var], {"Ref": param}, var)
        values = {
            "SigningKeys": KEYS,
            "AllowedSizes": SIZES,
            "AllowedFormats": "webp,avif,jpeg,auto",
            "MaxQuality": "85",
            "PublicUrl": "https://images.example.com",
            "UploadToken": "an-upload-token-0123456789",
        }
        env = self.env(**values)
        for param, value in values.items():
            self.assertEqual(env.get(OPTIONAL_ENV[param]), value, param)

    def test_empty_optional_parameters_are_left_out(self):
        for param, var in OPTIONAL_ENV.items():
            node = self.variables[var]
            self.assertIn("Fn::If", node, f"{var} must be left out (AWS::NoValue) when empty")
        env = self.env(SigningKeys=KEYS)
        for var in OPTIONAL_ENV.values():
            if var != "IMGFN_SIGNING_KEYS":
                self.assertNotIn(var, env)
        env = self.env(AllowUnsignedPublicAccess="true", AllowedSizes=SIZES)
        self.assertNotIn("IMGFN_SIGNING_KEYS", env)

    def test_only_plain_strings_may_be_empty(self):
        for params in [{"SigningKeys": KEYS},
                       {"AllowUnsignedPublicAccess": "true", "AllowedSizes": SIZES}]:
            empty = {k for k, v in self.env(**params).items() if v == ""}
            self.assertEqual(empty, MAY_BE_EMPTY)

    def test_secret_arn_becomes_a_dynamic_reference(self):
        env = self.env(SigningKeysSecretArn=SECRET_ARN)
        self.assertEqual(env["IMGFN_SIGNING_KEYS"],
                         "{{resolve:secretsmanager:" + SECRET_ARN + ":SecretString}}")

    def test_fixed_values(self):
        env = self.env(SigningKeys=KEYS)
        self.assertEqual(env["IMGFN_LOG_FORMAT"], "json")
        self.assertEqual(env["IMGFN_INVOKE_MODE"], "response-stream")
        self.assertEqual(self.env(SigningKeys=KEYS, InvokeMode="BUFFERED")["IMGFN_INVOKE_MODE"],
                         "buffered")
        self.assertEqual(env["IMGFN_BUCKET"], "<OriginalsBucket>")
        self.assertEqual(self.env(SigningKeys=KEYS, ExistingBucketName="photos")["IMGFN_BUCKET"],
                         "photos")


BUCKET = {"Fn::If": ["CreateBucket", {"Ref": "OriginalsBucket"}, {"Ref": "ExistingBucketName"}]}


class Iam(unittest.TestCase):
    def setUp(self):
        props = load()["Resources"]["ImageFunction"]["Properties"]
        self.assertNotIn("Role", props, "the function must use the role SAM builds from Policies")
        policies = props["Policies"]
        self.assertEqual(len(policies), 1, "one inline policy, no managed or SAM policy templates")
        self.assertEqual(set(policies[0]), {"Statement"})
        # (action, resource pattern, conditional on) for every statement, both Fn::If branches.
        self.grants = []
        for statement in policies[0]["Statement"]:
            condition = None
            if "Fn::If" in statement:
                condition, statement, other = statement["Fn::If"]
                self.assertEqual(other, {"Ref": "AWS::NoValue"})
            self.assertEqual(statement["Effect"], "Allow")
            self.assertNotIn("NotAction", statement)
            self.assertNotIn("NotResource", statement)
            actions = statement["Action"]
            text, variables = statement["Resource"]["Fn::Sub"]
            self.assertEqual(variables, {"Bucket": BUCKET}, statement.get("Sid"))
            for action in [actions] if isinstance(actions, str) else actions:
                self.grants.append((action, text, condition))

    def resources(self, action):
        return {(text, cond) for a, text, cond in self.grants if a == action}

    def test_only_these_actions(self):
        self.assertEqual({a for a, _, _ in self.grants},
                         {"s3:GetObject", "s3:PutObject", "s3:ListBucket"})

    def test_reads_only_originals_and_renditions(self):
        self.assertEqual(self.resources("s3:GetObject"), {
            ("arn:${AWS::Partition}:s3:::${Bucket}/${OriginalsPrefix}*", None),
            ("arn:${AWS::Partition}:s3:::${Bucket}/${RenditionsPrefix}*", None),
        })

    def test_writes_only_renditions_and_uploads(self):
        self.assertEqual(self.resources("s3:PutObject"), {
            ("arn:${AWS::Partition}:s3:::${Bucket}/${RenditionsPrefix}*", None),
            ("arn:${AWS::Partition}:s3:::${Bucket}/${OriginalsPrefix}${UploadPrefix}*",
             "UploadsOn"),
        })

    def test_list_only_the_bucket(self):
        self.assertEqual(self.resources("s3:ListBucket"),
                         {("arn:${AWS::Partition}:s3:::${Bucket}", None)})

    def test_prefixes_cannot_widen_the_grants(self):
        params = load()["Parameters"]
        for name in ["RenditionsPrefix", "UploadPrefix"]:
            pattern = params[name]["AllowedPattern"]
            self.assertFalse(re.fullmatch(pattern, ""), f"an empty {name} would grant the bucket")
            self.assertFalse(re.fullmatch(pattern, "*"), name)


def arn_matches(pattern, arn):
    """IAM's resource matching: `*` any run of characters (`/` included), `?` any one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


class IamScope(unittest.TestCase):
    """The grants resolved for real parameter values, checked against the objects the app
    touches: originals at IMGFN_PREFIX + key, offloaded renditions at IMGFN_RENDITIONS_PREFIX
    + hash, uploads at IMGFN_PREFIX + IMGFN_UPLOAD_PREFIX + YYYY/MM/uuid.ext."""

    PARAMS = {"SigningKeys": KEYS, "ExistingBucketName": "photos",
              "OriginalsPrefix": "originals/", "RenditionsPrefix": "_r/", "UploadPrefix": "up/"}

    def setUp(self):
        self.template = load()

    def grants(self, **params):
        """{(action, resolved resource ARN)} of the function's policy for these parameters."""
        ev = Evaluator(self.template, **params)
        statements = self.template["Resources"]["ImageFunction"]["Properties"]["Policies"][0][
            "Statement"]
        out = set()
        for node in statements:
            statement = ev.eval(node)
            if statement is NO_VALUE:
                continue
            actions = statement["Action"]
            for action in [actions] if isinstance(actions, str) else actions:
                resources = ev.eval(statement["Resource"])
                for resource in [resources] if isinstance(resources, str) else resources:
                    out.add((action, resource.replace("<AWS::Partition>", "aws")))
        return out

    def allowed(self, grants, action, arn):
        return any(a == action and arn_matches(r, arn) for a, r in grants)

    def test_resolved_grants_name_the_bucket_and_prefixes(self):
        self.assertEqual(self.grants(**self.PARAMS), {
            ("s3:GetObject", "arn:aws:s3:::photos/originals/*"),
            ("s3:GetObject", "arn:aws:s3:::photos/_r/*"),
            ("s3:PutObject", "arn:aws:s3:::photos/_r/*"),
            ("s3:ListBucket", "arn:aws:s3:::photos"),
        })
        with_uploads = self.grants(UploadToken="an-upload-token-0123456789", **self.PARAMS)
        self.assertEqual(with_uploads - self.grants(**self.PARAMS),
                         {("s3:PutObject", "arn:aws:s3:::photos/originals/up/*")})
        created = self.grants(SigningKeys=KEYS)
        self.assertIn(("s3:ListBucket", "arn:aws:s3:::<OriginalsBucket>"), created)
        self.assertIn(("s3:GetObject", "arn:aws:s3:::<OriginalsBucket>/*"), created)

    def test_what_the_app_touches_is_allowed_and_nothing_else(self):
        g = self.grants(UploadToken="an-upload-token-0123456789", **self.PARAMS)
        obj = "arn:aws:s3:::photos/"
        allowed = [
            ("s3:GetObject", obj + "originals/cat.jpg"),
            ("s3:GetObject", obj + "originals/a/b/c.png"),
            ("s3:GetObject", obj + "_r/0123abcd.webp"),
            ("s3:PutObject", obj + "_r/0123abcd.webp"),
            ("s3:PutObject", obj + "originals/up/2026/11/5e0c.jpg"),
            ("s3:ListBucket", "arn:aws:s3:::photos"),
        ]
        refused = [
            ("s3:GetObject", obj + "private/secret.jpg"),
            ("s3:GetObject", obj + "originals-old/cat.jpg"),
            ("s3:GetObject", "arn:aws:s3:::photos-backup/originals/cat.jpg"),
            ("s3:GetObject", "arn:aws:s3:::other/originals/cat.jpg"),
            ("s3:PutObject", obj + "originals/cat.jpg"),
            ("s3:PutObject", obj + "up/2026/11/5e0c.jpg"),
            ("s3:PutObject", obj + "private/x"),
            ("s3:PutObject", "arn:aws:s3:::photos-backup/_r/x.webp"),
            ("s3:ListBucket", "arn:aws:s3:::photos-backup"),
            ("s3:DeleteObject", obj + "_r/0123abcd.webp"),
            ("s3:DeleteObject", obj + "originals/cat.jpg"),
            ("s3:PutBucketPolicy", "arn:aws:s3:::photos"),
        ]
        for action, arn in allowed:
            self.assertTrue(self.allowed(g, action, arn), f"{action} {arn} must be allowed")
        for action, arn in refused:
            self.assertFalse(self.allowed(g, action, arn), f"{action} {arn} must be refused")
        # Without the upload token, no original can be written at all.
        g = self.grants(**self.PARAMS)
        self.assertFalse(self.allowed(g, "s3:PutObject", obj + "originals/up/2026/11/5e0c.jpg"))

    def test_nothing_else_grants_access(self):
        resources = self.template["Resources"]
        types = {name: r["Type"] for name, r in resources.items()}
        for name, kind in types.items():
            self.assertFalse(kind.startswith("AWS::IAM::"), f"{name}: {kind}")
            self.assertNotIn(kind, {"AWS::S3::BucketPolicy", "AWS::S3::AccessPoint",
                                    "AWS::Lambda::Url"}, name)
        permissions = [r["Properties"] for r in resources.values()
                       if r["Type"] == "AWS::Lambda::Permission"]
        self.assertEqual(permissions, [{
            "Action": "lambda:InvokeFunction", "FunctionName": {"Ref": "ImageFunction"},
            "Principal": "*", "InvokedViaFunctionUrl": True}])

    def test_only_renditions_expire(self):
        rules = self.template["Resources"]["OriginalsBucket"]["Properties"][
            "LifecycleConfiguration"]["Rules"]
        self.assertEqual(len(rules), 1)
        self.assertEqual(rules[0]["Prefix"], {"Ref": "RenditionsPrefix"})
        self.assertNotIn("Filter", rules[0])


class Cors(unittest.TestCase):
    def setUp(self):
        self.resources = load()["Resources"]

    def test_bucket_cors_allows_put_only(self):
        rules = self.resources["OriginalsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
        self.assertEqual(len(rules), 1)
        self.assertEqual(rules[0]["AllowedMethods"], ["PUT"])
        # The browser sends the signed headers of a presigned PUT: its type, and
        # `If-None-Match: *` (a replayed upload URL cannot overwrite what was stored).
        self.assertEqual(rules[0]["AllowedHeaders"], ["content-type", "if-none-match"])

    def test_bucket_cors_is_for_browser_uploads_from_any_page(self):
        (rule,) = self.resources["OriginalsBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
        self.assertEqual(rule["AllowedOrigins"], ["*"])
        self.assertEqual(rule["ExposedHeaders"], ["ETag"])
        self.assertGreater(rule["MaxAge"], 0)
        # Only these keys: no wildcard headers or extra methods hidden in another field.
        self.assertEqual(set(rule), {"AllowedOrigins", "AllowedMethods", "AllowedHeaders",
                                     "ExposedHeaders", "MaxAge"})
        # The preflight of the gallery's PUT: what imgfn's upload grant tells the page to send
        # (content-length and host are set by the browser itself and are never preflighted).
        granted = {"content-type", "content-length", "if-none-match"}
        preflighted = granted - {"content-length", "host"}
        self.assertTrue(preflighted <= {h.lower() for h in rule["AllowedHeaders"]})
        self.assertNotIn("*", rule["AllowedHeaders"])

    def test_function_url_cors(self):
        cors = self.resources["ImageFunction"]["Properties"]["FunctionUrlConfig"]["Cors"]
        self.assertEqual(cors["AllowOrigins"], ["*"])
        self.assertEqual(cors["AllowHeaders"], ["if-none-match"])
        self.assertEqual(cors["ExposeHeaders"], ["etag", "server-timing"])
        self.assertNotIn("AllowCredentials", cors)

    def test_bucket_is_private(self):
        block = self.resources["OriginalsBucket"]["Properties"]["PublicAccessBlockConfiguration"]
        self.assertEqual(block, {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                 "IgnorePublicAcls": True, "RestrictPublicBuckets": True})

    def test_function_url_cors_is_read_only(self):
        url = self.resources["ImageFunction"]["Properties"]["FunctionUrlConfig"]
        self.assertEqual(url["Cors"]["AllowMethods"], ["GET", "HEAD"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
