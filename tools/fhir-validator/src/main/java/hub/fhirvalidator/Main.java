package hub.fhirvalidator;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.ConceptValidationOptions;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.context.support.ValidationSupportContext;
import ca.uhn.fhir.parser.DataFormatException;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationResult;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.UnknownCodeSystemWarningValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.instance.model.api.IBaseResource;
import org.hl7.fhir.r4.model.Coding;

/**
 * Validates FHIR R4 JSON files against the core specification with HAPI's instance
 * validator, offline, in one JVM for many files (its start-up and the loading of the
 * definitions take seconds; each further file takes milliseconds).
 *
 * <p>Usage: {@code java -jar fhir-validator.jar PATH...}, each PATH a JSON file or a
 * directory searched for *.json. Prints one JSON report on stdout; exits 0 when no
 * file has an error, 1 when any has, 2 on bad usage or an unreadable file.
 */
public final class Main {
  private Main() {}

  /** One finding, as the report carries it. */
  private record Finding(String location, String message, String messageId) {}

  private record FileReport(String file, List<Finding> errors, List<Finding> warnings) {}

  /**
   * The validator, with the context and a chain of the code systems held in full (the
   * validator's chain without the module that answers "unknown, a warning" for every
   * other system) for the per-coding check.
   */
  record Validator(FhirContext ctx, ValidationSupportChain known, FhirValidator instance) {}

  public static void main(String[] args) {
    if (args.length == 0) {
      System.err.println("usage: fhir-validator PATH... (JSON files, or directories of *.json)");
      System.exit(2);
    }
    long started = System.nanoTime();
    List<Path> files;
    try {
      files = collect(args);
    } catch (IOException e) {
      System.err.println("fhir-validator: cannot read " + e.getMessage());
      System.exit(2);
      return;
    }
    Validator validator = buildValidator();
    // The definitions load on the first validation: do it here, so that start-up and
    // the cost per file are reported apart.
    validator.instance().validateWithResult("{\"resourceType\":\"Basic\",\"code\":{\"text\":\"warm-up\"}}");
    long ready = System.nanoTime();
    List<FileReport> reports = new ArrayList<>();
    for (Path f : files) {
      String text;
      try {
        text = Files.readString(f, StandardCharsets.UTF_8);
      } catch (IOException e) {
        System.err.println("fhir-validator: cannot read " + f);
        System.exit(2);
        return;
      }
      reports.add(validate(validator, f.toString(), text));
    }
    long done = System.nanoTime();
    int errors = reports.stream().mapToInt(r -> r.errors().size()).sum();
    int warnings = reports.stream().mapToInt(r -> r.warnings().size()).sum();
    print(System.out, reports, errors, warnings, millis(started, ready), millis(ready, done));
    System.err.printf(
        "fhir-validator: %d file(s), %d error(s), %d warning(s); start-up %d ms, validation %d ms%n",
        reports.size(), errors, warnings, millis(started, ready), millis(ready, done));
    System.exit(errors > 0 ? 1 : 0);
  }

  /**
   * The chain the HAPI documentation gives for offline validation, plus one choice of
   * ours: a code system the chain does not hold (LOINC, SNOMED CT, a sender's local
   * system) cannot be checked without a terminology server, so it is a warning, not
   * an error. Code systems the chain does hold (FHIR's own, the HL7 v2 tables and
   * v3 code systems shipped with R4, BCP-47, UCUM, MIME types, ISO 3166/4217) are
   * checked in full, and a code that is not in one of them is an error.
   */
  static Validator buildValidator() {
    FhirContext ctx = FhirContext.forR4();
    UnknownCodeSystemWarningValidationSupport unknownSystems =
        new UnknownCodeSystemWarningValidationSupport(ctx);
    unknownSystems.setNonExistentCodeSystemSeverity(IValidationSupport.IssueSeverity.WARNING);
    DefaultProfileValidationSupport definitions = new DefaultProfileValidationSupport(ctx);
    CommonCodeSystemsTerminologyService common = new CommonCodeSystemsTerminologyService(ctx);
    InMemoryTerminologyServerValidationSupport inMemory = new InMemoryTerminologyServerValidationSupport(ctx);
    ValidationSupportChain chain =
        new ValidationSupportChain(
            definitions, common, inMemory, new SnapshotGeneratingValidationSupport(ctx), unknownSystems);
    ValidationSupportChain known = new ValidationSupportChain(definitions, common, inMemory);
    // FHIR R4 (terminologies.html#strength): one coding from the bound value set is
    // enough, and the hub sends the FHIR coding first with the v2 original beside it.
    // HAPI's chain wants every coding in the value set unless told otherwise
    // (hapifhir/hapi-fhir#8345); the reference validator, validator_cli, wants one.
    chain.setCodeableConceptValidationSuccessfulIfNotAllCodingsAreValid(true);
    FhirInstanceValidator instanceValidator = new FhirInstanceValidator(chain);
    // Extensions the hub defines (under its own base URL) have no published
    // StructureDefinition here: accept them, and still validate their content type.
    instanceValidator.setAnyExtensionsAllowed(true);
    FhirValidator validator = ctx.newValidator();
    validator.registerValidatorModule(instanceValidator);
    return new Validator(ctx, known, validator);
  }

  static FileReport validate(Validator validator, String name, String text) {
    List<Finding> errors = new ArrayList<>();
    List<Finding> warnings = new ArrayList<>();
    ValidationResult result;
    try {
      // The raw text, not a parsed model: JSON-level faults (an empty array, a
      // null, a duplicate key) are errors the parser of a model would hide.
      result = validator.instance().validateWithResult(text);
    } catch (RuntimeException e) {
      errors.add(new Finding("", "not validatable: " + e.getMessage(), "HUB_NOT_FHIR"));
      return new FileReport(name, errors, warnings);
    }
    for (SingleValidationMessage m : result.getMessages()) {
      ResultSeverityEnum s = m.getSeverity();
      Finding f = new Finding(orEmpty(m.getLocationString()), orEmpty(m.getMessage()), orEmpty(m.getMessageId()));
      if (s == ResultSeverityEnum.ERROR || s == ResultSeverityEnum.FATAL) errors.add(f);
      else if (s == ResultSeverityEnum.WARNING) warnings.add(f);
      // Information messages (e.g. "a profile was not checked") are left out.
    }
    for (Finding f : unknownCodes(validator, text)) {
      // The same code already reported by the validator itself is one error, not two.
      String what = f.location().substring("Coding ".length());
      if (errors.stream().noneMatch(e -> e.message().contains(what))) errors.add(f);
    }
    return new FileReport(name, errors, warnings);
  }

  /**
   * Every Coding (contained resources and Bundle entries included) whose system the
   * chain holds in full must name a code of it. With one coding from the value set
   * enough for a binding (above), HAPI no longer looks at the others: a wrong code
   * beside a right one (an Encounter.serviceType "XYZ" in v2-0069 beside "MED") would
   * pass. The reference validator reports it as an error, and so does this.
   */
  static List<Finding> unknownCodes(Validator v, String text) {
    List<Finding> out = new ArrayList<>();
    IBaseResource resource;
    try {
      resource = v.ctx().newJsonParser().parseResource(text);
    } catch (DataFormatException | ClassCastException e) {
      return out; // Not parseable as R4: the validation above has said why.
    }
    ValidationSupportContext sc = new ValidationSupportContext(v.known());
    ConceptValidationOptions options = new ConceptValidationOptions();
    for (Coding c : v.ctx().newTerser().getAllPopulatedChildElementsOfType(resource, Coding.class)) {
      String system = c.getSystem();
      String code = c.getCode();
      if (system == null || code == null || !v.known().isCodeSystemSupported(sc, system)) continue;
      IValidationSupport.CodeValidationResult r = v.known().validateCode(sc, options, system, code, null, null);
      if (r == null || !r.isOk()) {
        String what = system + "#" + code;
        String message = r == null || r.getMessage() == null ? "Unknown code '" + what + "'" : r.getMessage();
        out.add(new Finding("Coding " + what, message, "HUB_CODING_UNKNOWN_CODE"));
      }
    }
    return out;
  }

  private static List<Path> collect(String[] args) throws IOException {
    List<Path> out = new ArrayList<>();
    for (String a : args) {
      Path p = Path.of(a);
      if (Files.isDirectory(p)) {
        try (Stream<Path> s = Files.walk(p)) {
          s.filter(Files::isRegularFile)
              .filter(x -> x.getFileName().toString().endsWith(".json"))
              .sorted()
              .forEach(out::add);
        }
      } else if (Files.isRegularFile(p)) {
        out.add(p);
      } else {
        throw new IOException(a);
      }
    }
    return out;
  }

  private static void print(
      PrintStream out, List<FileReport> reports, int errors, int warnings, long startupMs, long validateMs) {
    StringBuilder b = new StringBuilder();
    b.append("{\"fileCount\":").append(reports.size());
    b.append(",\"errorCount\":").append(errors);
    b.append(",\"warningCount\":").append(warnings);
    b.append(",\"startupMs\":").append(startupMs);
    b.append(",\"validationMs\":").append(validateMs);
    b.append(",\"files\":[");
    for (int i = 0; i < reports.size(); i++) {
      FileReport r = reports.get(i);
      if (i > 0) b.append(',');
      b.append("\n{\"file\":").append(str(r.file()));
      b.append(",\"errors\":");
      findings(b, r.errors());
      b.append(",\"warnings\":");
      findings(b, r.warnings());
      b.append('}');
    }
    b.append("]}\n");
    out.print(b);
    out.flush();
  }

  private static void findings(StringBuilder b, List<Finding> fs) {
    b.append('[');
    for (int i = 0; i < fs.size(); i++) {
      Finding f = fs.get(i);
      if (i > 0) b.append(',');
      b.append("{\"location\":").append(str(f.location()));
      b.append(",\"message\":").append(str(f.message()));
      b.append(",\"messageId\":").append(str(f.messageId())).append('}');
    }
    b.append(']');
  }

  /** A JSON string literal (RFC 8259 escaping). */
  static String str(String s) {
    StringBuilder b = new StringBuilder(s.length() + 2).append('"');
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
          else b.append(c);
        }
      }
    }
    return b.append('"').toString();
  }

  private static String orEmpty(String s) {
    return s == null ? "" : s;
  }

  private static long millis(long from, long to) {
    return (to - from) / 1_000_000;
  }
}
