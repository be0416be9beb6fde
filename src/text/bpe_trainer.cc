#include "text/bpe_trainer.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "text/byte_level_bpe.h"
#include "text/clip_tokenizer_files.h"

namespace vqd::text {
namespace {


// Short English captions written for this project (one per line); common caption words repeat
// often enough that 512 merges make them single tokens.
constexpr std::string_view kTinyCorpus = R"corpus(
a photo of a dog
a photo of a cat
a photo of a red car
a photo of the sea at sunset
a photo of a blue car on the road
a photo of a small dog on the grass
a photo of a black cat on a sofa
a photo of a white horse in a field
a photo of a man riding a bike
a photo of a woman with a red umbrella
a photo of two dogs playing in the snow
a photo of a cat sleeping in the sun
a photo of a red car parked on the street
a photo of a city at night
a photo of a mountain lake
a photo of a bowl of fruit on a table
a photo of a green tree in the park
a photo of a yellow flower
a photo of a teddy bear
a photo of a bird on a branch
a close up photo of a dog
a close up photo of a red rose
a black and white photo of a cat
a black and white photo of an old car
an old photo of a family at the beach
an oil painting of a cat
an oil painting of a ship at sea
a painting of a red house by the river
a painting of a dog in the style of van gogh
a drawing of a cat
a drawing of a car
a sketch of a horse
a picture of a dog and a cat
a picture of a red car and a blue car
the dog is running on the beach
the cat is sitting on the table
the red car is on the road
the sun is shining over the hills
the sky is blue and the grass is green
the man is walking his dog in the park
the woman is reading a book in the garden
the children are playing with a ball
the train is crossing a bridge
the boat is sailing on the lake
a dog with a red ball
a dog running in a field of flowers
a dog sitting next to a cat
a brown dog lying on the floor
a white dog in the snow
a happy dog on a sunny day
a cute cat with green eyes
a cat looking out of the window
an orange cat on a wooden chair
a gray cat playing with a toy
a red car driving on a mountain road
a fast red sports car
a red car in front of a house
an old red car in the rain
a blue car and a red car on the street
a white car in a parking lot
a yellow taxi in a busy city street
a bus on the street in the city
a truck on the highway at night
a bicycle leaning against a wall
a motorcycle on a country road
an airplane flying in the blue sky
a train at the station
a boat on the water at sunrise
a large ship in the harbor
a house with a red door
a small house in the woods
a tall building in the city
a bridge over the river
a castle on a hill
a street with trees and houses
a kitchen with a table and chairs
a living room with a sofa and a lamp
a bedroom with a large bed
a bathroom with a white sink
a plate of food on a table
a pizza with cheese and tomato
a cup of coffee on a wooden table
a glass of red wine
a bowl of soup
a sandwich on a plate
a cake with candles
a basket of apples
a banana and an orange
a group of people standing on a street
a group of elephants walking in muddy water
a group of friends at a party
a man in a suit
a woman in a red dress
a young girl with a red hat
a little boy playing in the sand
an old man sitting on a bench
a person holding an umbrella in the rain
a baby sleeping in a bed
a family having dinner at home
a horse running in a green field
a cow standing in a field
a sheep on a hill
a bird flying over the water
a duck swimming in a pond
a fish in the sea
a bear in the forest
a teddy bear playing in the pool
a lion resting in the grass
an elephant near a river
a giraffe eating leaves from a tree
a zebra in the savanna
a monkey in a tree
a rabbit in the garden
a mouse on the floor
a fox in the snow
a wolf howling at the moon
a tiger in the jungle
a panda eating bamboo
an owl at night
a butterfly on a flower
a long exposure photo of waterfall
a beautiful landscape with mountains and a lake
a forest in autumn with red and yellow leaves
a snowy mountain under a blue sky
a sandy beach with palm trees
a river running through a valley
a field of sunflowers
a desert at sunset
a lake with a small boat
a waterfall in the forest
the moon over the city at night
a starry night sky
a rainbow after the rain
clouds over the ocean
a storm over the sea
a sunny day in the park
a foggy morning in the woods
a city skyline at dusk
a busy market street
a quiet village by the sea
a train station in the morning
an airport with many planes
a road through the desert
a garden full of flowers
a park with a fountain
a playground with children
a soccer ball on the grass
a tennis player on a court
a man skiing down a mountain
a surfer riding a wave
a skateboarder in the park
a dog catching a frisbee
a cat chasing a mouse
a boy and his dog
a girl and her cat
a red apple on a white table
a green apple and a red apple
a blue bird on a yellow flower
a black dog and a white cat
a pink flower in a vase
a purple flower in the garden
a brown horse and a white horse
a gold ring on a black background
a silver car on a white background
a red balloon in the sky
a yellow umbrella on the beach
a green bottle on a table
a wooden boat on the river
a stone wall with a wooden door
a glass window with a view of the sea
a book on a desk next to a lamp
a computer on a desk
a phone on a table
a clock on the wall
a chair by the window
a vase of flowers on the table
a guitar on a bed
a piano in a room
an astronaut riding a horse on mars
a robot in a city
a dragon flying over a castle
a painting of a cat in a hat
a cartoon of a dog
a watercolor painting of a red car
a digital art of a city at night
a photo of a car in the snow
a photo of a dog in the rain
a photo of a cat in a box
a photo of the moon
a photo of the ocean
a photo of the street
a photo of the red car
a photo of the dog
a photo of the cat
high quality photo of a dog
high quality photo of a cat
a beautiful photo of a red car
a very cute dog
a very old car
a very big cat
a small red car
a big red car
a small white dog
a big black dog
two cats and a dog
three cars on a road
many people in the street
some flowers in a vase
one red car and two blue cars
)corpus";

constexpr int kMaxMerges = 100000;

}  // namespace

std::string_view TinyTrainingCorpus() { return kTinyCorpus; }

std::vector<std::pair<std::string, std::string>> TrainByteLevelBpe(std::string_view corpus,
                                                                   int num_merges) {
  // Word frequencies, in byte order of the words so that everything below is deterministic.
  std::map<std::string, int64_t> word_counts;
  for (const std::string& piece : PreTokenizeClip(NormalizeClip(DecodeUtf8Lossy(corpus)))) {
    ++word_counts[piece];
  }

  // Symbols are interned; each word is a sequence of symbol ids.
  std::vector<std::string> symbols;
  std::unordered_map<std::string, int32_t> symbol_ids;
  auto intern = [&](const std::string& s) {
    auto [it, inserted] = symbol_ids.emplace(s, static_cast<int32_t>(symbols.size()));
    if (inserted) symbols.push_back(s);
    return it->second;
  };
  struct Word {
    std::vector<int32_t> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  const auto& byte_chars = ByteToUnicode();
  for (const auto& [piece, count] : word_counts) {
    Word word{{}, count};
    for (size_t i = 0; i < piece.size(); ++i) {
      std::string s = byte_chars[static_cast<unsigned char>(piece[i])];
      if (i + 1 == piece.size()) s += kEndOfWord;
      word.symbols.push_back(intern(s));
    }
    words.push_back(std::move(word));
  }

  std::vector<std::pair<std::string, std::string>> merges;
  auto key = [](int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  };
  for (int step = 0; step < num_merges; ++step) {
    std::unordered_map<uint64_t, int64_t> pair_counts;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
        pair_counts[key(w.symbols[i], w.symbols[i + 1])] += w.count;
      }
    }
    // The most frequent pair; ties go to the smaller (left, right) in byte order. The choice does
    // not depend on the hash map's iteration order.
    bool found = false;
    int32_t best_a = 0, best_b = 0;
    int64_t best_count = 0;
    for (const auto& [k, count] : pair_counts) {
      const int32_t a = static_cast<int32_t>(k >> 32);
      const int32_t b = static_cast<int32_t>(k & 0xFFFFFFFFu);
      const bool better =
          !found || count > best_count ||
          (count == best_count && std::make_pair(std::string_view(symbols[a]),
                                                 std::string_view(symbols[b])) <
                                      std::make_pair(std::string_view(symbols[best_a]),
                                                     std::string_view(symbols[best_b])));
      if (better) {
        found = true;
        best_a = a;
        best_b = b;
        best_count = count;
      }
    }
    if (!found) break;
    merges.emplace_back(symbols[best_a], symbols[best_b]);
    const int32_t merged = intern(symbols[best_a] + symbols[best_b]);
    for (Word& w : words) {
      std::vector<int32_t> out;
      out.reserve(w.symbols.size());
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == best_a && w.symbols[i + 1] == best_b) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(out);
    }
  }
  return merges;
}

absl::Status WriteTinyClipTokenizer(const std::string& dir, int num_merges) {
  if (num_merges < 0 || num_merges > kMaxMerges) {
    return absl::InvalidArgumentError(
        absl::StrCat("tiny tokenizer: num_merges = ", num_merges, " is outside [0, ", kMaxMerges,
                     "]"));
  }
  const BpeMerges merges = TrainByteLevelBpe(kTinyCorpus, num_merges);
  VQD_ASSIGN_OR_RETURN(std::vector<std::string> vocabulary, ClipVocabulary(merges, /*skip_repeated_results=*/true));
  return WriteClipTokenizerFiles(dir, vocabulary, merges);
}

}  // namespace vqd::text
