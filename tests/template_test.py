#!/usr/bin/env python3
"""Checks of template.yaml that cfn-lint cannot make: the safe deploy default, least privilege,
and what issue 14 asks of a deploy (a private Function URL behind CloudFront, WAF, versioning,
no secret in the environment, alarms and a budget).

Run with the Python that has cfn-lint (scripts/test.sh does): `python3 tests/template_test.py`.
The template is read with cfn-lint's own loader (`cfnlint.decode.decode`), so the short tags
(`!Ref`, `!If`, `!Sub`, ...) arrive as their long forms (`{"Ref": ...}`, `{"Fn::If": [...]}`).
A small evaluator then resolves the Rules, Conditions and environment variables for given
parameter values, the way CloudFormation would at change-set time. The `Rendered` checks run
the template through the SAM transform first (cfn-lint's copy of it), so they see the
resources CloudFormation will create, with CloudFront on and off. Set TEMPLATE_YAML to check
another file (e.g. a deliberately broken copy).
"""

import json
import os
import re
import unittest
from pathlib import Path

from cfnlint.decode import decode

TEMPLATE = Path(
    os.environ.get("TEMPLATE_YAML", Path(__file__).resolve().parent.parent / "template.yaml")
)

# Parameter -> the IMGFN_* variable it sets; each is left out of the environment when empty.
# (SigningKeys and UploadToken set none: they go to a Secrets Manager secret.)
OPTIONAL_ENV = {
    "AllowedSizes": "IMGFN_ALLOWED_SIZES",
    "AllowedFormats": "IMGFN_ALLOWED_FORMATS",
    "MaxQuality": "IMGFN_MAX_QUALITY",
    "PublicUrl": "IMGFN_PUBLIC_URL",
}
# Parameter -> variable, always set.
PLAIN_ENV = {
    "OriginalsPrefix": "IMGFN_PREFIX",
    "RenditionsPrefix": "IMGFN_RENDITIONS_PREFIX",
    "CacheMiB": "IMGFN_CACHE_MIB",
    "CacheControl": "IMGFN_CACHE_CONTROL",
    "UploadPrefix": "IMGFN_UPLOAD_PREFIX",
    "Gallery": "IMGFN_GALLERY",
}
# Variables that may legitimately be the empty string: plain strings whose app default is "".
MAY_BE_EMPTY = {"IMGFN_PREFIX"}

KEYS = "k1:my-signing-secret-2026"
UPLOAD_TOKEN = "an-upload-token-0123456789"
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

    def __init__(self, template, region="us-east-1", **overrides):
        params = template["Parameters"]
        self.region = region
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
            items = [self.eval(n, only) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if isinstance(node, dict) and len(node) != 1:
            items = {k: self.eval(v, only) for k, v in node.items()}
            return {k: v for k, v in items.items() if v is not NO_VALUE}
        if not isinstance(node, dict):
            return node
        ((fn, arg),) = node.items()
        if not (fn == "Ref" or fn.startswith("Fn::") or fn == "Condition"):
            value = self.eval(arg, only)
            return {} if value is NO_VALUE else {fn: value}
        if only is not None and fn not in only:
            raise AssertionError(f"{fn} is not allowed here (only {sorted(only)})")
        if fn == "Ref":
            if arg in self.values:
                return self.values[arg]
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg == "AWS::Region":
                return self.region
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
        if fn == "Fn::GetAtt":
            name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return f"<{name}.{attribute}>"
        if fn == "Fn::Split":
            sep, text = arg
            return str(self.eval(text, only)).split(sep)
        if fn == "Fn::Select":
            index, items = arg
            items = self.eval(items, only)
            return items[int(index)] if int(index) < len(items) else f"<Select {index}>"
        if fn == "Fn::FindInMap":
            name, key, attribute = (self.eval(x, only) for x in arg)
            return self.template["Mappings"][name][key][attribute]
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg

            def sub(m):
                name = m.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in variables:
                    return str(self.eval(variables[name], only))
                if "." in name:
                    return str(self.eval({"Fn::GetAtt": name}, only))
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

    def resources(self):
        """{name: resource with its properties resolved} of the resources created."""
        out = {}
        for name, resource in self.template["Resources"].items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            out[name] = {**resource, "Properties": self.eval(resource.get("Properties", {}))}
        return out

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
        for name in ["SigningKeys", "UploadToken", "GalleryToken"]:
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
            # What `ViewerToken`/`UploadToken` parse: 16+ printable ASCII characters, no
            # spaces, and no `"` or `\` (the template writes the value into the secret's JSON).
            "GalleryToken": (
                ["", "a-viewer-token-0123", "x" * 16 + "!~#[]"],
                ["short-token", "has a space in it 0123", 'quote"in-it-0123456', "é" * 16],
            ),
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

    def test_gallery_modes_and_the_private_token(self):
        self.assertEqual(load()["Parameters"]["Gallery"]["Default"], "off")
        self.assertEqual(sorted(load()["Parameters"]["Gallery"]["AllowedValues"]),
                         ["off", "private", "public"])
        for mode in ["off", "public"]:
            self.assertEqual(self.refusals(SigningKeys=KEYS, Gallery=mode), [])
        refused = self.refusals(SigningKeys=KEYS, Gallery="private")
        self.assertTrue(refused, "a private gallery with no token to open it")
        self.assertIn("GalleryToken", " ".join(refused))
        for opener in [dict(GalleryToken="a-viewer-token-0123"), dict(UploadToken=UPLOAD_TOKEN)]:
            self.assertEqual(self.refusals(SigningKeys=KEYS, Gallery="private", **opener), [])
        self.assertEqual(self.refusals(SigningKeysSecretArn=SECRET_ARN, Gallery="private"), [])
        self.assertTrue(self.refusals(SigningKeysSecretArn=SECRET_ARN,
                                      GalleryToken="a-viewer-token-0123"))

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
            "AllowedSizes": SIZES,
            "AllowedFormats": "webp,avif,jpeg,auto",
            "MaxQuality": "85",
            "PublicUrl": "https://images.example.com",
        }
        env = self.env(SigningKeys=KEYS, **values)
        for param, value in values.items():
            self.assertEqual(env.get(OPTIONAL_ENV[param]), value, param)

    def test_empty_optional_parameters_are_left_out(self):
        for param, var in OPTIONAL_ENV.items():
            node = self.variables[var]
            self.assertIn("Fn::If", node, f"{var} must be left out (AWS::NoValue) when empty")
        env = self.env(SigningKeys=KEYS)
        for var in OPTIONAL_ENV.values():
            self.assertNotIn(var, env)
        env = self.env(AllowUnsignedPublicAccess="true", AllowedSizes=SIZES)
        self.assertNotIn("IMGFN_SECRETS_ID", env, "no secret: nothing to read")
        self.assertNotIn("IMGFN_SECRETS_TTL_SECS", env)

    def test_only_plain_strings_may_be_empty(self):
        for params in [{"SigningKeys": KEYS},
                       {"AllowUnsignedPublicAccess": "true", "AllowedSizes": SIZES}]:
            empty = {k for k, v in self.env(**params).items() if v == ""}
            self.assertEqual(empty, MAY_BE_EMPTY)

    def test_the_function_is_told_which_secret_to_read(self):
        env = self.env(SigningKeysSecretArn=SECRET_ARN)
        self.assertEqual(env["IMGFN_SECRETS_ID"], SECRET_ARN)
        self.assertEqual(env["IMGFN_SECRETS_TTL_SECS"], "300")
        self.assertEqual(self.env(SigningKeys=KEYS)["IMGFN_SECRETS_ID"], "<AppSecret>")
        self.assertEqual(self.env(AllowUnsignedPublicAccess="true", AllowedSizes=SIZES,
                                  UploadToken=UPLOAD_TOKEN)["IMGFN_SECRETS_ID"], "<AppSecret>")

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
            if statement.get("Sid") == "ReadSecret":
                self.secret_grant = (actions, statement["Resource"], condition)
                continue
            text, variables = statement["Resource"]["Fn::Sub"]
            self.assertEqual(variables, {"Bucket": BUCKET}, statement.get("Sid"))
            for action in [actions] if isinstance(actions, str) else actions:
                self.grants.append((action, text, condition))

    def resources(self, action):
        return {(text, cond) for a, text, cond in self.grants if a == action}

    def test_only_these_actions(self):
        self.assertEqual({a for a, _, _ in self.grants},
                         {"s3:GetObject", "s3:PutObject", "s3:ListBucket",
                          "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"})

    def test_reads_only_its_own_secret(self):
        self.assertEqual(self.secret_grant, (
            "secretsmanager:GetSecretValue",
            {"Fn::If": ["HasSigningKeysSecret", {"Ref": "SigningKeysSecretArn"},
                        {"Ref": "AppSecret"}]},
            "UsesSecret"))

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

    def test_uploads_in_parts_only_under_the_upload_prefix(self):
        for action in ["s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"]:
            self.assertEqual(self.resources(action), {
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
        return {g for g in out if not g[0].startswith("secretsmanager:")}

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
                         {("s3:PutObject", "arn:aws:s3:::photos/originals/up/*"),
                          ("s3:ListMultipartUploadParts", "arn:aws:s3:::photos/originals/up/*"),
                          ("s3:AbortMultipartUpload", "arn:aws:s3:::photos/originals/up/*")})
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
            ("s3:ListMultipartUploadParts", obj + "originals/up/2026/11/5e0c.jpg"),
            ("s3:AbortMultipartUpload", obj + "originals/up/2026/11/5e0c.jpg"),
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
            ("s3:AbortMultipartUpload", obj + "originals/cat.jpg"),
            ("s3:ListMultipartUploadParts", obj + "_r/0123abcd.webp"),
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
                                    "AWS::Lambda::Url", "AWS::SecretsManager::ResourcePolicy"},
                             name)
        # Who may invoke, per mode: see Rendered.test_*_function_url_*.
        for name, kind in types.items():
            if kind == "AWS::Lambda::Permission":
                self.assertIn(resources[name].get("Condition"), {"UseCloudFront", "NoCloudFront"},
                              name)

    def test_only_renditions_and_old_versions_expire(self):
        rules = self.template["Resources"]["OriginalsBucket"]["Properties"][
            "LifecycleConfiguration"]["Rules"]
        expiring = [r for r in rules if "ExpirationInDays" in r or "ExpirationDate" in r]
        self.assertEqual(len(expiring), 1)
        self.assertEqual(expiring[0]["Prefix"], {"Ref": "RenditionsPrefix"})
        self.assertNotIn("Filter", expiring[0])
        for rule in rules:
            if rule is not expiring[0]:
                self.assertNotIn("Prefix", rule, "bucket-wide rules expire no current object")
                self.assertNotIn("Filter", rule)


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


def rendered():
    """The template after the SAM transform (what CloudFormation deploys), or a skip."""
    from cfnlint.template import Template
    from cfnlint.template.transforms._sam import sam

    template = load()
    matches, transformed = sam(Template(str(TEMPLATE), template, ["us-east-1"]))
    if matches:
        raise AssertionError(f"the SAM transform failed: {[str(m) for m in matches]}")
    return transformed


CLOUDFRONT = {"SigningKeys": KEYS, "EnableCloudFront": "true"}
DIRECT = {"SigningKeys": KEYS, "EnableCloudFront": "false"}


class Rendered(unittest.TestCase):
    """Issue 14's deploy, on the resources CloudFormation creates (SAM transform applied),
    resolved for given parameters: with CloudFront on and off."""

    @classmethod
    def setUpClass(cls):
        cls.template = rendered()

    def created(self, region="us-east-1", **params):
        return Evaluator(self.template, region=region, **params).resources()

    def of_type(self, resources, kind):
        return {n: r["Properties"] for n, r in resources.items() if r["Type"] == kind}

    def invokers(self, resources):
        """(action, principal, auth type, via URL, source ARN) of every Lambda permission."""
        return {(p["Action"], p["Principal"], p.get("FunctionUrlAuthType"),
                 p.get("InvokedViaFunctionUrl"), p.get("SourceArn"))
                for p in self.of_type(resources, "AWS::Lambda::Permission").values()}

    def test_with_cloudfront_the_function_url_is_private_behind_oac(self):
        r = self.created(**CLOUDFRONT)
        (url,) = self.of_type(r, "AWS::Lambda::Url").values()
        self.assertEqual(url["AuthType"], "AWS_IAM")
        oacs = self.of_type(r, "AWS::CloudFront::OriginAccessControl")
        self.assertEqual(len(oacs), 1)
        ((oac_name, oac),) = oacs.items()
        self.assertEqual(oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"],
                         "lambda")
        self.assertEqual(oac["OriginAccessControlConfig"]["SigningBehavior"], "always")
        self.assertEqual(oac["OriginAccessControlConfig"]["SigningProtocol"], "sigv4")
        (dist,) = self.of_type(r, "AWS::CloudFront::Distribution").values()
        (origin,) = dist["DistributionConfig"]["Origins"]
        self.assertEqual(origin.get("OriginAccessControlId"), f"<{oac_name}.Id>")
        self.assertEqual(origin["DomainName"], "<Select 2>", "the Function URL's host")
        # Only the distribution may invoke: through the URL and the function behind it.
        source = "arn:<AWS::Partition>:cloudfront::<AWS::AccountId>:distribution/<Distribution>"
        self.assertEqual(self.invokers(r), {
            ("lambda:InvokeFunctionUrl", "cloudfront.amazonaws.com", "AWS_IAM", None, source),
            ("lambda:InvokeFunction", "cloudfront.amazonaws.com", None, True, source),
        })
        # Bodies (uploads) reach the URL: every method, nothing cached, all viewer headers.
        (uploads,) = dist["DistributionConfig"]["CacheBehaviors"]
        self.assertEqual(uploads["PathPattern"], "/_/*")
        self.assertIn("POST", uploads["AllowedMethods"])

    def test_without_cloudfront_the_function_url_is_public(self):
        r = self.created(**DIRECT)
        (url,) = self.of_type(r, "AWS::Lambda::Url").values()
        self.assertEqual(url["AuthType"], "NONE")
        self.assertEqual(self.of_type(r, "AWS::CloudFront::OriginAccessControl"), {})
        self.assertEqual(self.of_type(r, "AWS::CloudFront::Distribution"), {})
        self.assertEqual(self.invokers(r), {
            ("lambda:InvokeFunctionUrl", "*", "NONE", None, None),
            ("lambda:InvokeFunction", "*", None, True, None),
        })

    def test_waf_rate_rule_when_enabled(self):
        r = self.created(WafRateLimit="777", EnableWaf="true", **CLOUDFRONT)
        acls = self.of_type(r, "AWS::WAFv2::WebACL")
        self.assertEqual(len(acls), 1)
        ((acl_name, acl),) = acls.items()
        self.assertEqual(acl["Scope"], "CLOUDFRONT")
        rules = {rule["Name"]: rule for rule in acl["Rules"]}
        (rate,) = [rule for rule in rules.values() if "RateBasedStatement" in rule["Statement"]]
        self.assertEqual(rate["Action"], {"Block": {}})
        statement = rate["Statement"]["RateBasedStatement"]
        self.assertEqual(statement["Limit"], "777")
        self.assertEqual(statement["AggregateKeyType"], "IP")
        self.assertEqual(statement["EvaluationWindowSec"], 300)
        managed = [rule["Statement"]["ManagedRuleGroupStatement"] for rule in rules.values()
                   if "ManagedRuleGroupStatement" in rule["Statement"]]
        self.assertIn({"VendorName": "AWS", "Name": "AWSManagedRulesAmazonIpReputationList"},
                      managed)
        (dist,) = self.of_type(r, "AWS::CloudFront::Distribution").values()
        self.assertEqual(dist["DistributionConfig"]["WebACLId"], f"<{acl_name}.Arn>")
        # Off by default, and refused where a CloudFront web ACL cannot be made.
        r = self.created(**CLOUDFRONT)
        self.assertEqual(self.of_type(r, "AWS::WAFv2::WebACL"), {})
        (dist,) = self.of_type(r, "AWS::CloudFront::Distribution").values()
        self.assertNotIn("WebACLId", dist["DistributionConfig"])
        refused = Evaluator(load(), region="eu-west-1", EnableWaf="true", **CLOUDFRONT).refusals()
        self.assertIn("us-east-1", " ".join(refused))
        self.assertTrue(Evaluator(load(), EnableWaf="true", **DIRECT).refusals())
        self.assertEqual(Evaluator(load(), EnableWaf="true", **CLOUDFRONT).refusals(), [])

    def test_the_created_bucket_is_versioned(self):
        for params in [CLOUDFRONT, DIRECT]:
            r = self.created(**params)
            (bucket,) = self.of_type(r, "AWS::S3::Bucket").values()
            self.assertEqual(bucket["VersioningConfiguration"], {"Status": "Enabled"})
            rules = bucket["LifecycleConfiguration"]["Rules"]
            noncurrent = [rule for rule in rules if "NoncurrentVersionExpiration" in rule
                          and "Prefix" not in rule]
            self.assertEqual(len(noncurrent), 1, "old versions of originals expire, bucket-wide")
            self.assertEqual(noncurrent[0]["NoncurrentVersionExpiration"]["NoncurrentDays"], "30")
            (renditions,) = [rule for rule in rules if "Prefix" in rule]
            self.assertEqual((renditions["Prefix"], renditions["ExpirationInDays"]),
                             ("_renditions/", "7"))
            aborts = [rule["AbortIncompleteMultipartUpload"] for rule in rules
                      if "AbortIncompleteMultipartUpload" in rule]
            self.assertEqual(aborts, [{"DaysAfterInitiation": 1}])
            self.assertNotIn("LoggingConfiguration", bucket)
        (bucket,) = self.of_type(self.created(AccessLogsBucketName="logs", **DIRECT),
                                 "AWS::S3::Bucket").values()
        self.assertEqual(bucket["LoggingConfiguration"]["DestinationBucketName"], "logs")

    def test_no_secret_in_a_plain_environment_variable(self):
        secret_values = [KEYS, KEYS.split(":", 1)[1], UPLOAD_TOKEN]
        cases = [
            dict(UploadToken=UPLOAD_TOKEN, **CLOUDFRONT),
            dict(UploadToken=UPLOAD_TOKEN, **DIRECT),
            dict(SigningKeysSecretArn=SECRET_ARN, UploadTokenInSecret="true"),
            dict(AllowUnsignedPublicAccess="true", AllowedSizes=SIZES, UploadToken=UPLOAD_TOKEN),
        ]
        for params in cases:
            r = self.created(**params)
            (function,) = self.of_type(r, "AWS::Lambda::Function").values()
            env = function["Environment"]["Variables"]
            text = " ".join(f"{k}={v}" for k, v in env.items())
            for value in secret_values:
                self.assertNotIn(value, text, params)
            self.assertNotIn("resolve:secretsmanager", text, params)
            for name in env:
                self.assertNotRegex(name, "SIGNING_KEYS|UPLOAD_TOKEN|SECRET$", params)
            # Only the secret's ARN; the role may read that secret and no other.
            secret = SECRET_ARN if "SigningKeysSecretArn" in params else "<AppSecret>"
            self.assertEqual(env["IMGFN_SECRETS_ID"], secret)
            (role,) = self.of_type(r, "AWS::IAM::Role").values()
            reads = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]
                     if "secretsmanager:GetSecretValue" in str(s["Action"])]
            self.assertEqual([s["Resource"] for s in reads], [secret], params)
            self.assertEqual(len(function["Layers"]), 1, "the secrets extension")
        # The given values go to the secret the template creates, and only there.
        r = self.created(UploadToken=UPLOAD_TOKEN, **DIRECT)
        (stored,) = self.of_type(r, "AWS::SecretsManager::Secret").values()
        self.assertEqual(json.loads(stored["SecretString"]),
                         {"signing_keys": KEYS, "upload_token": UPLOAD_TOKEN, "gallery_token": ""})
        # A viewer token alone makes the template keep a secret too, and only there.
        r = self.created(GalleryToken="a-viewer-token-0123", Gallery="private", **DIRECT)
        (stored,) = self.of_type(r, "AWS::SecretsManager::Secret").values()
        self.assertEqual(json.loads(stored["SecretString"])["gallery_token"], "a-viewer-token-0123")
        (function,) = self.of_type(r, "AWS::Lambda::Function").values()
        env = function["Environment"]["Variables"]
        self.assertNotIn("a-viewer-token-0123", " ".join(f"{k}={v}" for k, v in env.items()))
        self.assertEqual((env["IMGFN_GALLERY"], env["IMGFN_SECRETS_ID"]), ("private", "<AppSecret>"))
        self.assertEqual(
            self.of_type(self.created(SigningKeysSecretArn=SECRET_ARN),
                         "AWS::SecretsManager::Secret"), {})

    def test_alarms_dashboard_and_budget_exist(self):
        for params in [CLOUDFRONT, DIRECT]:
            r = self.created(AlertEmail="ops@example.com", **params)
            alarms = self.of_type(r, "AWS::CloudWatch::Alarm").values()
            watched = set()
            for alarm in alarms:
                metrics = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", [])
                           if "MetricStat" in m] or [alarm]
                for m in metrics:
                    self.assertEqual(m["Namespace"], "AWS/Lambda")
                    self.assertEqual(m["Dimensions"],
                                     [{"Name": "FunctionName", "Value": "<ImageFunction>"}])
                    watched.add(m["MetricName"])
                self.assertEqual(alarm["AlarmActions"], ["<AlertTopic>"])
            self.assertEqual(watched, {"Url5xxCount", "UrlRequestCount", "Throttles", "Duration"})
            p99 = [a for a in alarms if a.get("MetricName") == "Duration"]
            self.assertEqual([a["ExtendedStatistic"] for a in p99], ["p99"])
            (topic,) = self.of_type(r, "AWS::SNS::Topic").values()
            self.assertEqual(topic["Subscription"],
                             [{"Protocol": "email", "Endpoint": "ops@example.com"}])
            self.assertEqual(len(self.of_type(r, "AWS::CloudWatch::Dashboard")), 1)
            budgets = self.of_type(r, "AWS::Budgets::Budget")
            self.assertEqual(len(budgets), 1, "a budget")
            (budget,) = budgets.values()
            self.assertEqual(budget["Budget"]["BudgetLimit"], {"Amount": "50", "Unit": "USD"})
            self.assertEqual(budget["Budget"]["TimeUnit"], "MONTHLY")
            addresses = {s["Address"] for n in budget["NotificationsWithSubscribers"]
                         for s in n["Subscribers"]}
            self.assertEqual(addresses, {"ops@example.com"})
        # Without an address they exist all the same, silent.
        r = self.created(**DIRECT)
        self.assertEqual(len(self.of_type(r, "AWS::CloudWatch::Alarm")), 3)
        (budget,) = self.of_type(r, "AWS::Budgets::Budget").values()
        self.assertNotIn("NotificationsWithSubscribers", budget)


if __name__ == "__main__":
    unittest.main(verbosity=2)
