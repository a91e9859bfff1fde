package dev.chorus.flink;

import java.io.IOException;
import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.data.binary.BinaryStringDataUtil;

/**
 * The top-level fields of one JSON payload, parsed once per record and thread.
 *
 * <p>Flink's {@code IS JSON OBJECT}, {@code JSON_VALUE} and {@code JSON_EXISTS} parse the whole
 * payload on every call, and a signal job asks about a dozen such questions per record. The
 * functions of this package answer them from one parse: {@link #of} keeps the last payload it
 * parsed on this thread, and a record passes through its chained operators (the source's
 * watermark generator, the computed columns, the checked view) on one thread before the next
 * record arrives, so every call for a record after the first finds it. The functions are
 * deterministic: the cache only decides whether to parse again, never what the answer is.
 *
 * <p>The answers are Flink 2.2's, for a path {@code '$.name'} in lax mode: the payload is read as
 * {@code SqlJsonUtils} reads it (Jackson, floats as {@code BigDecimal}, the last of duplicate
 * keys wins, trailing text after the object ignored); a value's text is
 * {@code String.valueOf} of what Jackson made of it (NULL for a JSON null, an object or an
 * array); a field exists when its key is there with a value other than JSON null (as
 * {@code JSON_EXISTS} has it: {@code {"a": null}} has no {@code $.a}).
 */
final class JsonFields {
    private static final JsonFactory FACTORY = new JsonFactory();
    private static final ThreadLocal<JsonFields> LAST = new ThreadLocal<>();

    private final String payload;
    /** Null when the payload is not a JSON object; otherwise each key's text (null if none). */
    private final Map<String, String> texts;
    /** The keys whose value is not JSON null. */
    private final Set<String> present;
    /** Event times already read from this payload, by field (absent: not asked yet). */
    private final Map<String, TimestampData> timestamps = new HashMap<>(4);

    private JsonFields(String payload, Map<String, String> texts, Set<String> present) {
        this.payload = payload;
        this.texts = texts;
        this.present = present;
    }

    /** The fields of {@code payload}, from this thread's last parse if it was the same text. */
    static JsonFields of(String payload) {
        JsonFields last = LAST.get();
        if (last != null && last.payload.equals(payload)) {
            return last;
        }
        JsonFields parsed = parse(payload);
        LAST.set(parsed);
        return parsed;
    }

    /** {@code payload IS JSON OBJECT}. */
    boolean isObject() {
        return texts != null;
    }

    /** {@code JSON_VALUE(payload, '$.name')}. */
    String text(String name) {
        return texts == null ? null : texts.get(name);
    }

    /** {@code JSON_EXISTS(payload, '$.name')}. */
    boolean exists(String name) {
        return texts != null && present.contains(name);
    }

    /**
     * {@code TRY_CAST(REPLACE(REPLACE(JSON_VALUE(payload, '$.name'), 'T', ' '), 'Z', '') AS
     * TIMESTAMP(3))}, with the cast's own code ({@code BinaryStringDataUtil.toTimestamp}).
     */
    TimestampData timestamp(String name) {
        if (timestamps.containsKey(name)) {
            return timestamps.get(name);
        }
        String text = text(name);
        TimestampData found = null;
        if (text != null) {
            String written = text.replace("T", " ").replace("Z", "");
            found = plainTimestamp(written);
            if (found == null) {
                try {
                    found = BinaryStringDataUtil.toTimestamp(BinaryStringData.fromString(written), 3);
                } catch (RuntimeException e) {
                    found = null; // TRY_CAST: an unreadable timestamp is NULL
                }
            }
        }
        timestamps.put(name, found);
        return found;
    }

    /**
     * {@code yyyy-MM-dd HH:mm:ss[.S[S[S]]]} (the usual event time), read without the cast's
     * general formatter, which took a sixth of a job's per-record time; null for anything else
     * (another shape, or a date or time that does not exist), which the cast then reads. The
     * cast reads every such text to the same instant, so the result does not depend on which
     * path read it.
     */
    static TimestampData plainTimestamp(String text) {
        int length = text.length();
        if (length != 19 && !(length >= 21 && length <= 23 && text.charAt(19) == '.')) {
            return null;
        }
        if (text.charAt(4) != '-' || text.charAt(7) != '-' || text.charAt(10) != ' '
                || text.charAt(13) != ':' || text.charAt(16) != ':' || text.charAt(0) == '0') {
            return null;
        }
        int year = digits(text, 0, 4);
        int month = digits(text, 5, 7);
        int day = digits(text, 8, 10);
        int hour = digits(text, 11, 13);
        int minute = digits(text, 14, 16);
        int second = digits(text, 17, 19);
        int millis = 0;
        if (length > 19) {
            millis = digits(text, 20, length);
            for (int i = length; i < 23; i++) {
                millis *= 10;
            }
        }
        if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0
                || millis < 0) {
            return null;
        }
        try {
            return TimestampData.fromLocalDateTime(
                    LocalDateTime.of(year, month, day, hour, minute, second, millis * 1_000_000));
        } catch (DateTimeException e) {
            return null; // February 30th and the like: the cast decides
        }
    }

    /** The decimal number in {@code text[from, to)}, or -1 if a character is not a digit. */
    private static int digits(String text, int from, int to) {
        int value = 0;
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            value = value * 10 + (c - '0');
        }
        return value;
    }

    private static JsonFields parse(String payload) {
        JsonFields notAnObject = new JsonFields(payload, null, null);
        try (JsonParser parser = FACTORY.createParser(payload)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return notAnObject; // an array, a scalar or nothing
            }
            Map<String, String> texts = new HashMap<>(8);
            Set<String> present = new HashSet<>(8);
            JsonToken token;
            while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
                String name = parser.currentName();
                JsonToken value = parser.nextToken();
                texts.put(name, scalarText(parser, value));
                if (value == JsonToken.VALUE_NULL) {
                    present.remove(name); // the last of duplicate keys wins
                } else {
                    present.add(name);
                }
            }
            if (token != JsonToken.END_OBJECT) {
                return notAnObject;
            }
            return new JsonFields(payload, texts, present);
        } catch (IOException | RuntimeException e) {
            return notAnObject; // not JSON: IS JSON OBJECT is false, JSON_VALUE/JSON_EXISTS NULL/false
        }
    }

    /** What JSON_VALUE returns for the value at the parser: its text, or null. */
    private static String scalarText(JsonParser parser, JsonToken token) throws IOException {
        if (token == null) {
            throw new IOException("unexpected end of input");
        }
        switch (token) {
            case VALUE_STRING:
                return parser.getText();
            case VALUE_NUMBER_INT:
                return String.valueOf(parser.getNumberValue());
            case VALUE_NUMBER_FLOAT:
                return String.valueOf(parser.getDecimalValue());
            case VALUE_TRUE:
                return "true";
            case VALUE_FALSE:
                return "false";
            case VALUE_NULL:
                return null;
            case START_OBJECT:
            case START_ARRAY:
                parser.skipChildren(); // read through it: a syntax error inside still counts
                return null;
            default:
                throw new IOException("unexpected " + token);
        }
    }
}
